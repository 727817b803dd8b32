# Host values ↔ serialized bytes (wire format §3). The library moves bytes; this file is the only
# place that knows how a Julia value becomes the bytes of a payload type and back.

const BINARY_TYPES = ("image", "audio", "video", "binary")

# Filled by the package extensions in ext/, so that Arrow.jl and DataFrames.jl stay optional.
"""`arrow_write(io, table)`: writes a Tables.jl table as an Arrow IPC stream (NATSBridgeArrowExt)."""
function arrow_write end
"""`arrow_read(bytes)`: an `Arrow.Table` over Arrow IPC bytes (NATSBridgeArrowExt)."""
function arrow_read end
"""`to_dataframe(table)`: a `DataFrame` of a Tables.jl table (NATSBridgeDataFramesExt)."""
function to_dataframe end

# An extension loaded after a task started is in a newer world than that task: ask the latest.
has_method(f, args...) = Base.invokelatest(applicable, f, args...)::Bool

"""
    serialize(value, payload_type) -> Vector{UInt8}

The bytes of `value` as a payload of `payload_type`:
- `"text"`: a string, as UTF-8;
- `"dictionary"`: any value JSON.jl writes (a Dict, a NamedTuple, a vector...), as JSON;
- `"jsontable"`: a vector of rows (Dicts or NamedTuples) or any Tables.jl table (a DataFrame),
  as a JSON array of row objects;
- `"arrowtable"`: any Tables.jl table (needs `using Arrow`), or Arrow IPC stream bytes as they are;
- `"image"`, `"audio"`, `"video"`, `"binary"`: bytes (`AbstractVector{UInt8}`), as they are.
Bytes or text given with another type are passed on, for the library to refuse the type.
"""
function serialize(value, payload_type::AbstractString)::Vector{UInt8}
    if payload_type == "text"
        value isa AbstractString ||
            throw(ArgumentError("a text payload takes a string, not $(typeof(value))"))
        return Vector{UInt8}(String(value))
    elseif payload_type == "dictionary"
        return Vector{UInt8}(JSON.json(value))
    elseif payload_type == "jsontable"
        return Vector{UInt8}(JSON.json(json_rows(value)))
    elseif payload_type == "arrowtable"
        value isa AbstractVector{UInt8} && return Vector{UInt8}(value)
        Tables.istable(value) || throw(ArgumentError(
            "an arrowtable payload takes a Tables.jl table or Arrow IPC bytes, not $(typeof(value))"))
        io = IOBuffer()
        has_method(arrow_write, io, value) ||
            throw(ArgumentError("sending an arrowtable needs Arrow.jl: `using Arrow` first"))
        Base.invokelatest(arrow_write, io, value)
        return take!(io)
    elseif payload_type in BINARY_TYPES
        value isa AbstractVector{UInt8} || throw(ArgumentError(
            "a $payload_type payload takes bytes (Vector{UInt8}), not $(typeof(value))"))
        return Vector{UInt8}(value)
    elseif value isa AbstractVector{UInt8}
        return Vector{UInt8}(value)
    elseif value isa AbstractString
        return Vector{UInt8}(String(value))
    end
    return UInt8[]
end

"""Rows for a jsontable: a vector of rows as it is, a Tables.jl table row by row."""
function json_rows(value)
    value isa AbstractVector && return value
    Tables.istable(value) || throw(ArgumentError(
        "a jsontable payload takes a vector of rows (Dicts or NamedTuples) or a Tables.jl " *
        "table, not $(typeof(value))"))
    return [Dict{String,Any}(String(name) => Tables.getcolumn(row, name)
                             for name in Tables.columnnames(row))
            for row in Tables.rows(value)]
end

parse_json(text::AbstractString) = JSON.parse(text; dicttype = Dict{String,Any})

"""
    deserialize(bytes, payload_type; as_dataframe = false)

The value of a received payload: a `String` for text, the parsed JSON (`Dict{String,Any}`,
vectors, numbers...) for dictionary, a `Vector{Dict{String,Any}}` of rows for jsontable, an
`Arrow.Table` for arrowtable when Arrow.jl is loaded (its IPC bytes otherwise), and the bytes
for the binary types. With `as_dataframe = true` (needs `using DataFrames`), jsontable and
arrowtable payloads come back as DataFrames.
"""
function deserialize(bytes::Vector{UInt8}, payload_type::AbstractString; as_dataframe::Bool = false)
    if payload_type == "text"
        return String(bytes)
    elseif payload_type == "dictionary"
        return parse_json(String(bytes))
    elseif payload_type == "jsontable"
        rows = Dict{String,Any}[row for row in parse_json(String(bytes))]
        return as_dataframe ? dataframe(Tables.dictrowtable(rows)) : rows
    elseif payload_type == "arrowtable"
        if has_method(arrow_read, bytes)
            table = Base.invokelatest(arrow_read, bytes)
            return as_dataframe ? dataframe(table) : table
        end
        as_dataframe && throw(ArgumentError(
            "reading an arrowtable as a DataFrame needs Arrow.jl: `using Arrow` first"))
        return bytes
    end
    return bytes
end

function dataframe(table)
    has_method(to_dataframe, table) ||
        throw(ArgumentError("as_dataframe = true needs DataFrames.jl: `using DataFrames` first"))
    return Base.invokelatest(to_dataframe, table)
end
