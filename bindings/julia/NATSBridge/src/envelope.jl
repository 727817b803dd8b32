# Envelopes: the walkthrough's `env`, a dictionary of the header keys plus "payloads", the
# vector of `(dataname, value, payload_type)` tuples.

"""Owns an `nb_envelope*` handed out by the library; frees it when finalized."""
mutable struct EnvelopeHandle
    ptr::Ptr{Cvoid}
    function EnvelopeHandle(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(ArgumentError("NULL envelope"))
        return finalizer(free!, new(ptr))
    end
end

function free!(h::EnvelopeHandle)
    p = h.ptr
    h.ptr = C_NULL
    p == C_NULL || nb_envelope_free(p)
    return nothing
end

Base.unsafe_convert(::Type{Ptr{Cvoid}}, h::EnvelopeHandle) = h.ptr

"""
    Envelope

One message: an `AbstractDict{String,Any}` with the envelope's header keys (`"correlation_id"`,
`"msg_id"`, `"timestamp"`, `"send_to"`, `"msg_purpose"`, `"sender_name"`, `"sender_id"`,
`"receiver_name"`, `"receiver_id"`, `"reply_to"`, `"reply_to_msg_id"`, `"broker_url"`,
`"metadata"`) and `"payloads"`, a `Vector{Tuple{String,Any,String}}` of
`(dataname, value, payload_type)`. Keys are also properties: `env.correlation_id`,
`env.payloads`. [`payload_details`](@ref) tells how each payload travelled.
"""
struct Envelope <: AbstractDict{String,Any}
    _fields::Dict{String,Any}
    _details::Vector{Dict{String,Any}}
    # Kept only for an envelope that can be replied to (it has a reply_to): `reply` passes it
    # back to the library. Others release the library's copy (payload bytes included) at once.
    _handle::Union{Nothing,EnvelopeHandle}
end

fields(env::Envelope) = getfield(env, :_fields)

Base.length(env::Envelope) = length(fields(env))
Base.iterate(env::Envelope, state...) = iterate(fields(env), state...)
Base.getindex(env::Envelope, key::AbstractString) = fields(env)[key]
Base.get(env::Envelope, key, default) = get(fields(env), key, default)
Base.haskey(env::Envelope, key) = haskey(fields(env), key)
Base.keys(env::Envelope) = keys(fields(env))
Base.values(env::Envelope) = values(fields(env))
Base.getproperty(env::Envelope, name::Symbol) = fields(env)[String(name)]
Base.propertynames(env::Envelope, private::Bool = false) = Tuple(Symbol.(keys(fields(env))))

"""
    payload_details(env::Envelope) -> Vector{Dict{String,Any}}

How each payload of `env` travelled, in order: `"id"`, `"dataname"`, `"payload_type"`,
`"transport"` (`"direct"` or `"link"`), `"size"` (serialized bytes), `"url"` (link payloads,
`nothing` for direct ones) and `"metadata"`.
"""
payload_details(env::Envelope) = getfield(env, :_details)

cstring(p::Ptr{Cchar}) = p == C_NULL ? "" : unsafe_string(p)

function header_fields(h::EnvelopeHandle)
    GC.@preserve h begin
        return parse_json(cstring(nb_envelope_header_json(h)))
    end
end

function payload_detail(h::EnvelopeHandle, index::Integer)
    i = Csize_t(index)
    GC.@preserve h begin
        url = nb_envelope_payload_url(h, i)
        return Dict{String,Any}(
            "id" => cstring(nb_envelope_payload_id(h, i)),
            "dataname" => cstring(nb_envelope_payload_dataname(h, i)),
            "payload_type" => cstring(nb_envelope_payload_type(h, i)),
            "transport" => cstring(nb_envelope_payload_transport(h, i)),
            "size" => Int(nb_envelope_payload_size(h, i)),
            "url" => url == C_NULL ? nothing : unsafe_string(url),
            "metadata" => parse_json(cstring(nb_envelope_payload_metadata_json(h, i))),
        )
    end
end

function payload_bytes(h::EnvelopeHandle, index::Integer)
    data = Ref{Ptr{UInt8}}(C_NULL)
    len = Ref{Csize_t}(0)
    GC.@preserve h begin
        check(nb_envelope_payload_bytes(h, Csize_t(index), data, len))
        n = Int(len[])
        n == 0 && return UInt8[]
        return copy(unsafe_wrap(Array, data[], n))
    end
end

"""An Envelope of a received `nb_envelope*`: values decoded, the handle kept for a reply."""
function received_envelope(ptr::Ptr{Cvoid}; as_dataframe::Bool = false)
    h = EnvelopeHandle(ptr)
    try
        env = header_fields(h)
        n = Int(nb_envelope_payload_count(h))
        details = Vector{Dict{String,Any}}(undef, n)
        payloads = Vector{Tuple{String,Any,String}}(undef, n)
        for i in 1:n
            d = payload_detail(h, i - 1)
            payload_type = d["payload_type"]::String
            value = deserialize(payload_bytes(h, i - 1), payload_type; as_dataframe)
            payloads[i] = (d["dataname"]::String, value, payload_type)
            details[i] = d
        end
        env["payloads"] = payloads
        reply_to = get(env, "reply_to", "")
        replyable = reply_to isa AbstractString && !isempty(reply_to)
        replyable || finalize(h)
        return Envelope(env, details, replyable ? h : nothing)
    catch
        finalize(h)
        rethrow()
    end
end

"""An Envelope of a sent `nb_envelope*` (released here): its payloads are the values given."""
function sent_envelope(ptr::Ptr{Cvoid}, items)
    h = EnvelopeHandle(ptr)
    try
        env = header_fields(h)
        details = [payload_detail(h, i) for i in 0:Int(nb_envelope_payload_count(h))-1]
        env["payloads"] = Tuple{String,Any,String}[(item.dataname, item.value, item.payload_type)
                                                   for item in items]
        return Envelope(env, details, nothing)
    finally
        finalize(h)
    end
end
