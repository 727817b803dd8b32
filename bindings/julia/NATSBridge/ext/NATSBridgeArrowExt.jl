# arrowtable payloads as Arrow.jl tables: loaded with `using Arrow` (a weak dependency).
module NATSBridgeArrowExt

using Arrow: Arrow
using NATSBridge: NATSBridge

# The wire format's bytes are an Arrow IPC *stream* (not the file format).
NATSBridge.arrow_write(io::IO, table) = Arrow.write(io, table; file = false)

NATSBridge.arrow_read(bytes::Vector{UInt8}) = Arrow.Table(bytes)

end # module
