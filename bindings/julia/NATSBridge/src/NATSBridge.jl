"""
    NATSBridge

Typed data over NATS with the claim-check pattern: `smartsend` publishes an envelope of named
payloads (text, dictionary, arrowtable, jsontable, image, audio, video, binary); small payloads
travel in the message, large ones through a Plik-compatible file server. `smartreceive` turns
a message back into values. A `Client` keeps one connection for sending, subscribing and
request/reply.

Built on libnatsbridge, found through `ENV["NATSBRIDGE_LIB"]`, this repository's
`target/release` or `target/debug`, or the system's library path.
"""
module NATSBridge

using JSON
using Libdl
using Tables

export smartsend, smartreceive, Client, Subscription, Envelope, NATSBridgeError,
       subscribe, request, reply, payload_details, dropped

include("ffi.jl")
include("errors.jl")
include("values.jl")
include("envelope.jl")
include("client.jl")
include("subscription.jl")

"""The version of the loaded libnatsbridge (`"0.1.0"`)."""
library_version() = unsafe_string(nb_version())

"""The path of the loaded libnatsbridge."""
library_path() = LIBRARY_PATH[]

"""
    set_log_level(level::Symbol)

How much libnatsbridge logs to standard error: `:off` (the default), `:warn`, `:info` (every
step of sending and receiving, with its correlation id) or `:debug`.
"""
function set_log_level(level::Symbol)
    haskey(LOG_LEVELS, level) ||
        throw(ArgumentError("log level must be one of $(join(keys(LOG_LEVELS), ", "))"))
    check(nb_log_set_level(LOG_LEVELS[level]))
    return nothing
end

function __init__()
    load_library()
    # Close what is still open while the runtime can still do it (wire format and C ABI rules:
    # bindings close their subscriptions and clients before the interpreter shuts down).
    atexit(close_everything)
    return nothing
end

end # module
