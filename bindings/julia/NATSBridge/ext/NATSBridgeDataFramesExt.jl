# jsontable and arrowtable payloads received as DataFrames (`as_dataframe = true`): loaded with
# `using DataFrames` (a weak dependency). Sending a DataFrame needs no extension: it is a
# Tables.jl table.
module NATSBridgeDataFramesExt

using DataFrames: DataFrames
using NATSBridge: NATSBridge

# Any Tables.jl table: an Arrow.Table (columns copied out of the message's memory), or the rows
# of a jsontable (given as a Tables.dictrowtable).
NATSBridge.to_dataframe(table) = DataFrames.DataFrame(table)

end # module
