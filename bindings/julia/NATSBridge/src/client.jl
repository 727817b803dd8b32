# Client, configuration, send options, and the walkthrough's smartsend / smartreceive, plus
# request / reply.

"""
    Client(; settings...)
    NATSBridge.connect(; settings...)
    NATSBridge.connect(f; settings...)

A connection to NATS with everything needed to send and receive envelopes. Settings start from
the defaults with the environment applied (`NATS_URL`, `FILESERVER_URL`, `FILESERVER_TOKEN`,
`SIZE_THRESHOLD`); those given here win:

| setting | meaning |
|---|---|
| `nats_url` | NATS server URL(s), comma separated (`nats://`, `tls://`) |
| `fileserver_url` | Plik-compatible file server for link payloads (`""`: none); `http://user:password@host:port` sends basic auth with uploads |
| `fileserver_token` | upload token of a file server that requires one (`""`: none) |
| `size_threshold` | payloads of at least this many serialized bytes go by link (500000) |
| `sender_name` | default `sender_name` of the envelopes sent |
| `client_name` | connection name shown by the NATS server |
| `connect_timeout`, `operation_timeout`, `http_idle_timeout` | seconds (5, 10, ...) |
| `subscription_queue` | envelopes a subscription queues before dropping (1024) |
| `token`, `user` + `password`, `creds_file` | NATS credentials |
| `tls_required`, `tls_ca`, `tls_cert` + `tls_key` | TLS to NATS (PEM files) |
| `oneshot`, `ttl` | upload link payloads one-shot; seconds the server keeps them |
| `fallback_to_direct` | a failed upload goes direct when it fits (true) |
| `allowed_origins` | more origins to download link payloads from (`["*"]`: any) |
| `max_download_bytes` | largest link payload accepted |
| `max_retries`, `base_delay`, `max_delay` | download attempts, and delays in milliseconds (5, 100, 5000) |
| `parallel_downloads` | link payloads downloaded at once by one receiver (4) |
| `download_timeout`, `min_transfer_rate` | a received message's link payloads, retries included, must arrive within `download_timeout` seconds (30) + their declared sizes at `min_transfer_rate` bytes per second (262144), else `"DOWNLOAD_FAILED"`; an upload's deadline is `operation_timeout` + its size at `min_transfer_rate` |
| `ordered_subscriptions` | subscriptions deliver in arrival order, an envelope waiting for the downloads of those before it, at most their deadline (true); false: each as soon as it is decoded, so envelopes without link payloads never wait behind a download |

`close(client)` flushes and closes it; the do-block form closes it at the end. Clients still
open when Julia exits are closed then.

A send returns once its envelope is handed to the connection; [`dropped`](@ref) counts those
the server had not confirmed when the connection dropped (they may be lost), `flush` and
`close` report them once as `"MESSAGES_DROPPED"`, and `smartsend(...; confirm = true)` returns
only once the server confirmed the envelope.
"""
mutable struct Client
    ptr::Ptr{Cvoid}
    @atomic closed::Bool
    function Client(ptr::Ptr{Cvoid})
        return finalizer(finalize_client, new(ptr, false))
    end
end

Client(; settings...) = connect(; settings...)

function finalize_client(c::Client)
    p = c.ptr
    p == C_NULL && return nothing
    c.ptr = C_NULL
    if @atomic c.closed
        nb_client_free(p)
    else
        # Freeing an open client flushes and closes it, which may wait on the network: not
        # inside the garbage collector.
        Threads.@spawn nb_client_free(p)
    end
    return nothing
end

function Base.unsafe_convert(::Type{Ptr{Cvoid}}, c::Client)
    c.ptr == C_NULL && throw(binding_error(NB_ERR_CLOSED, "the client was freed"))
    return c.ptr
end

# Open clients, closed at exit. Weak: a client nobody holds is freed by the GC.
const OPEN_CLIENTS = WeakKeyDict{Client,Nothing}()

function connect(; settings...)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    with_config(; settings...) do cfg
        check(nb_client_connect(cfg, out))
    end
    client = Client(out[])
    OPEN_CLIENTS[client] = nothing
    return client
end

function connect(f::Function; settings...)
    client = connect(; settings...)
    try
        return f(client)
    finally
        close(client)
    end
end

"""
    close(client::Client)

Flushes what was published, then closes the connection; its subscriptions end after
delivering what they hold, and sends racing it throw `"CLOSED"`. Throws `"MESSAGES_DROPPED"`
as `flush` does (the client is closed all the same). Closing again does nothing.
"""
function Base.close(c::Client)
    (@atomicswap c.closed = true) && return nothing
    delete!(OPEN_CLIENTS, c)
    check(nb_client_close(c))
    return nothing
end

Base.isopen(c::Client) = !(@atomic c.closed)

"""
    flush(client)

Waits until the server has confirmed everything published so far (`"TIMEOUT"` after
`operation_timeout`). Throws a `NATSBridgeError` `"MESSAGES_DROPPED"` when messages sent since
the last report were not confirmed when the connection to NATS dropped: they may be lost. Each
is reported once; see [`dropped`](@ref).
"""
Base.flush(c::Client) = check(nb_client_flush(c))

"""
    dropped(client::Client) -> Int

Messages the client handed to the connection that the server had not confirmed when the
connection dropped, since connect: they may not have arrived (an upper bound). `flush` and
`close` report them as `"MESSAGES_DROPPED"`; a send with `confirm = true` throws its own.
"""
function dropped(c::Client)
    out = Ref{UInt64}(0)
    check(nb_client_dropped(c, out))
    return Int(out[])
end

"""The largest message the server accepts, in bytes."""
function max_payload(c::Client)
    out = Ref{Csize_t}(0)
    check(nb_client_max_payload(c, out))
    return Int(out[])
end

Base.show(io::IO, c::Client) = print(io, "NATSBridge.Client(", isopen(c) ? "open" : "closed", ")")

# ---- configuration -------------------------------------------------------------------------

milliseconds(seconds::Real) = round(UInt64, 1000 * seconds)

"""Calls `f(cfg)` with an `nb_config*` made from the environment and `settings`."""
function with_config(f; settings...)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(nb_config_from_env(out))
    cfg = out[]
    try
        configure!(cfg; settings...)
        return f(cfg)
    finally
        nb_config_free(cfg)
    end
end

function configure!(cfg::Ptr{Cvoid};
                    nats_url = nothing, fileserver_url = nothing, fileserver_token = nothing,
                    size_threshold = nothing,
                    sender_name = nothing, client_name = nothing,
                    connect_timeout = nothing, operation_timeout = nothing,
                    http_idle_timeout = nothing, subscription_queue = nothing,
                    token = nothing, user = nothing, password = nothing, creds_file = nothing,
                    tls_required = nothing, tls_ca = nothing, tls_cert = nothing,
                    tls_key = nothing, oneshot = nothing, ttl = nothing,
                    fallback_to_direct = nothing, allowed_origins = (),
                    max_download_bytes = nothing, max_retries = nothing, base_delay = nothing,
                    max_delay = nothing, parallel_downloads = nothing,
                    download_timeout = nothing, min_transfer_rate = nothing,
                    ordered_subscriptions = nothing)
    nats_url === nothing || check(nb_config_set_nats_url(cfg, nats_url))
    fileserver_url === nothing || check(nb_config_set_fileserver_url(cfg, fileserver_url))
    fileserver_token === nothing || check(nb_config_set_fileserver_token(cfg, fileserver_token))
    size_threshold === nothing || check(nb_config_set_size_threshold(cfg, size_threshold))
    sender_name === nothing || check(nb_config_set_sender_name(cfg, sender_name))
    client_name === nothing || check(nb_config_set_client_name(cfg, client_name))
    connect_timeout === nothing ||
        check(nb_config_set_connect_timeout_ms(cfg, milliseconds(connect_timeout)))
    operation_timeout === nothing ||
        check(nb_config_set_operation_timeout_ms(cfg, milliseconds(operation_timeout)))
    http_idle_timeout === nothing ||
        check(nb_config_set_http_idle_timeout_ms(cfg, milliseconds(http_idle_timeout)))
    subscription_queue === nothing ||
        check(nb_config_set_subscription_queue(cfg, subscription_queue))
    token === nothing || check(nb_config_set_token(cfg, token))
    if user !== nothing || password !== nothing
        (user === nothing || password === nothing) &&
            throw(ArgumentError("give both `user` and `password`"))
        check(nb_config_set_user_password(cfg, user, password))
    end
    creds_file === nothing || check(nb_config_set_creds_file(cfg, creds_file))
    tls_required === nothing || check(nb_config_set_tls_required(cfg, tls_required))
    tls_ca === nothing || check(nb_config_add_tls_root_certificate(cfg, tls_ca))
    if tls_cert !== nothing || tls_key !== nothing
        (tls_cert === nothing || tls_key === nothing) &&
            throw(ArgumentError("give both `tls_cert` and `tls_key`"))
        check(nb_config_set_tls_client_certificate(cfg, tls_cert, tls_key))
    end
    oneshot === nothing || check(nb_config_set_link_oneshot(cfg, oneshot))
    ttl === nothing || check(nb_config_set_link_ttl_s(cfg, ttl))
    fallback_to_direct === nothing || check(nb_config_set_fallback_to_direct(cfg, fallback_to_direct))
    for origin in (allowed_origins isa AbstractString ? (allowed_origins,) : allowed_origins)
        check(nb_config_add_allowed_origin(cfg, origin))
    end
    max_download_bytes === nothing ||
        check(nb_config_set_max_download_bytes(cfg, max_download_bytes))
    if max_retries !== nothing || base_delay !== nothing || max_delay !== nothing
        check(nb_config_set_download_retry(cfg, something(max_retries, 5),
                                           something(base_delay, 100), something(max_delay, 5000)))
    end
    parallel_downloads === nothing ||
        check(nb_config_set_parallel_downloads(cfg, parallel_downloads))
    download_timeout === nothing ||
        check(nb_config_set_download_timeout_ms(cfg, milliseconds(download_timeout)))
    min_transfer_rate === nothing ||
        check(nb_config_set_min_transfer_rate(cfg, min_transfer_rate))
    ordered_subscriptions === nothing ||
        check(nb_config_set_ordered_subscriptions(cfg, ordered_subscriptions))
    return cfg
end

# ---- payloads and send options -------------------------------------------------------------

function no_nul(s::AbstractString, what::AbstractString)
    str = String(s)
    occursin('\0', str) && throw(ArgumentError("$what contains a NUL character"))
    return str
end

"""The `(dataname, value, payload_type[, metadata])` items of `data`, checked."""
function payload_items(data)
    (data isa AbstractVector || data isa Tuple) || throw(ArgumentError(
        "data is a vector of (dataname, value, payload_type) tuples, not $(typeof(data))"))
    return map(collect(data)) do item
        (item isa Tuple && length(item) in (3, 4)) || throw(ArgumentError(
            "each payload is (dataname, value, payload_type) or " *
            "(dataname, value, payload_type, metadata), not $(repr(item))"))
        name, value, payload_type = item[1], item[2], item[3]
        (name isa AbstractString && payload_type isa AbstractString) || throw(ArgumentError(
            "a payload's dataname and payload_type are strings, in $(repr(item))"))
        metadata = length(item) == 4 ? no_nul(JSON.json(item[4]), "payload metadata") : nothing
        (dataname = no_nul(name, "a dataname"), value = value,
         payload_type = no_nul(payload_type, "a payload_type"), metadata = metadata)
    end
end

cchar_pointer(s::String) = Ptr{Cchar}(pointer(s))

"""
Calls `f(payloads, items)` with the `nb_payload_in` array of `data` (pointing into Julia memory
kept alive for the call; the library copies it).
"""
function with_payloads(f, data)
    items = payload_items(data)
    bytes = [serialize(item.value, item.payload_type) for item in items]
    payloads = Vector{nb_payload_in}(undef, length(items))
    GC.@preserve items bytes payloads begin
        for (i, item) in enumerate(items)
            b = bytes[i]
            payloads[i] = nb_payload_in(
                cchar_pointer(item.dataname),
                cchar_pointer(item.payload_type),
                isempty(b) ? Ptr{UInt8}(C_NULL) : pointer(b),
                Csize_t(length(b)),
                item.metadata === nothing ? Ptr{Cchar}(C_NULL) : cchar_pointer(item.metadata),
            )
        end
        return f(payloads, items)
    end
end

"""Calls `f(opts)` with an `nb_send_options*` holding the envelope fields given."""
function with_send_options(f; correlation_id = nothing, msg_id = nothing, msg_purpose = nothing,
                           sender_name = nothing, sender_id = nothing, receiver_name = nothing,
                           receiver_id = nothing, reply_to = nothing, reply_to_msg_id = nothing,
                           metadata = nothing, size_threshold = nothing,
                           fallback_to_direct = nothing, confirm = nothing)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(nb_send_options_new(out))
    opts = out[]
    try
        correlation_id === nothing || check(nb_send_options_set_correlation_id(opts, correlation_id))
        msg_id === nothing || check(nb_send_options_set_msg_id(opts, msg_id))
        msg_purpose === nothing || check(nb_send_options_set_msg_purpose(opts, msg_purpose))
        sender_name === nothing || check(nb_send_options_set_sender_name(opts, sender_name))
        sender_id === nothing || check(nb_send_options_set_sender_id(opts, sender_id))
        receiver_name === nothing || check(nb_send_options_set_receiver_name(opts, receiver_name))
        receiver_id === nothing || check(nb_send_options_set_receiver_id(opts, receiver_id))
        reply_to === nothing || check(nb_send_options_set_reply_to(opts, reply_to))
        reply_to_msg_id === nothing ||
            check(nb_send_options_set_reply_to_msg_id(opts, reply_to_msg_id))
        metadata === nothing ||
            check(nb_send_options_set_metadata_json(opts, no_nul(JSON.json(metadata), "metadata")))
        size_threshold === nothing || check(nb_send_options_set_size_threshold(opts, size_threshold))
        fallback_to_direct === nothing ||
            check(nb_send_options_set_fallback_to_direct(opts, fallback_to_direct))
        confirm === nothing || check(nb_send_options_set_confirm(opts, confirm))
        return f(opts)
    finally
        nb_send_options_free(opts)
    end
end

"""The `(env, msg_json)` of a send: the envelope as sent and the published JSON."""
function sent(envelope::Ptr{Cvoid}, json::Ptr{Cchar}, items)
    msg_json = try
        unsafe_string(json)
    finally
        nb_string_free(json)
    end
    return sent_envelope(envelope, items), msg_json
end

# ---- smartsend / smartreceive / request / reply --------------------------------------------

"""
    env, msg_json = smartsend(subject, data; kwargs...)

Serializes each `(dataname, value, payload_type)` of `data` (see [`serialize`](@ref) for the
values each type takes; a fourth element adds payload metadata), sends small payloads in the
message and uploads large ones, and publishes one envelope on `subject`. Returns the envelope as
sent (an [`Envelope`](@ref) whose payloads are the values given) and the published JSON.

Envelope fields, each defaulting as in the wire format: `correlation_id`, `msg_id`,
`msg_purpose` (`"chat"`; also `"ACK"`, `"NACK"`, `"updateStatus"`, `"shutdown"`, `"command"`,
`"event"`), `sender_name`, `sender_id`, `receiver_name`, `receiver_id`, `reply_to`,
`reply_to_msg_id`, `metadata` (a Dict). Per send: `size_threshold`, `fallback_to_direct`, and
`confirm`: `true` returns only once the NATS server confirmed it received the envelope (a
round trip), else throws `"MESSAGES_DROPPED"` (the connection dropped first) or `"TIMEOUT"`
(no confirmation within `operation_timeout`); the envelope may then be lost. `request` and
`reply` take the same keywords.

`client` sends through an open [`Client`](@ref). Without one, a connection is made for this
send and closed after it: `broker_url` (the NATS URL; it also becomes the envelope's
`broker_url`), `fileserver_url` and any other [`Client`](@ref) setting apply to it.
"""
function smartsend(subject::AbstractString, data;
                   client::Union{Client,Nothing} = nothing,
                   broker_url::Union{AbstractString,Nothing} = nothing,
                   fileserver_url::Union{AbstractString,Nothing} = nothing,
                   correlation_id = nothing, msg_id = nothing, msg_purpose = nothing,
                   sender_name = nothing, sender_id = nothing, receiver_name = nothing,
                   receiver_id = nothing, reply_to = nothing, reply_to_msg_id = nothing,
                   metadata = nothing, size_threshold = nothing, fallback_to_direct = nothing,
                   confirm = nothing, settings...)
    options = (; correlation_id, msg_id, msg_purpose, sender_name, sender_id, receiver_name,
               receiver_id, reply_to, reply_to_msg_id, metadata, size_threshold,
               fallback_to_direct, confirm)
    if client === nothing
        connection = (; settings...)
        broker_url === nothing || (connection = merge(connection, (; nats_url = broker_url)))
        fileserver_url === nothing ||
            (connection = merge(connection, (; fileserver_url = fileserver_url)))
        return connect(c -> send_with(c, subject, data, options); connection...)
    end
    (broker_url === nothing && fileserver_url === nothing && isempty(settings)) ||
        throw(ArgumentError("connection settings belong to the Client when `client` is given"))
    return send_with(client, subject, data, options)
end

function send_with(client::Client, subject::AbstractString, data, options::NamedTuple)
    env_out = Ref{Ptr{Cvoid}}(C_NULL)
    json_out = Ref{Ptr{Cchar}}(C_NULL)
    items = with_payloads(data) do payloads, items
        with_send_options(; options...) do opts
            check(nb_client_smartsend(client, subject, payloads, length(payloads), opts,
                                      env_out, json_out))
        end
        items
    end
    return sent(env_out[], json_out[], items)
end

"""
    env = smartreceive(msg; client = nothing, as_dataframe = false, settings...)

Decodes one NATS message — its bytes, a `String`, or any message object with a `payload` field
— into an [`Envelope`](@ref): `env["payloads"]` holds `(dataname, value, payload_type)` tuples
(see [`deserialize`](@ref) for the values), link payloads downloaded from allowed origins with
retries (`max_retries`, `base_delay`, `max_delay` in milliseconds) and checked against their
sha256. Uses the `client`'s settings if given, otherwise the environment and `settings`
(any [`Client`](@ref) setting; no NATS connection is made).
"""
function smartreceive(msg::AbstractVector{UInt8}; client::Union{Client,Nothing} = nothing,
                      as_dataframe::Bool = false, settings...)
    bytes = msg isa Vector{UInt8} ? msg : Vector{UInt8}(msg)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    if client === nothing
        with_config(; settings...) do cfg
            check(nb_smartreceive(cfg, bytes, length(bytes), out))
        end
    else
        isempty(settings) ||
            throw(ArgumentError("settings belong to the Client when `client` is given"))
        check(nb_client_smartreceive(client, bytes, length(bytes), out))
    end
    return received_envelope(out[]; as_dataframe)
end

smartreceive(msg::AbstractString; kwargs...) = smartreceive(Vector{UInt8}(String(msg)); kwargs...)

function smartreceive(msg; kwargs...)
    hasproperty(msg, :payload) || throw(ArgumentError(
        "smartreceive takes bytes, a String or a message with a `payload` field, not $(typeof(msg))"))
    payload = msg.payload
    (payload isa AbstractVector{UInt8} || payload isa AbstractString) || throw(ArgumentError(
        "the message's payload is $(typeof(payload)), not bytes or a String"))
    return smartreceive(payload; kwargs...)
end

timeout_ms(seconds::Real) = (seconds < 0 || isinf(seconds)) ? Int64(-1) : round(Int64, 1000 * seconds)

"""
    reply_env = request(client, subject, data; timeout = 10, as_dataframe = false, options...)

Sends `data` as [`smartsend`](@ref) does, with a fresh inbox as `reply_to` (unless `reply_to`
is given), and waits up to `timeout` seconds (`Inf`: no limit) for the first reply, returned
as a received [`Envelope`](@ref). Throws a `NATSBridgeError` `"TIMEOUT"` when no reply came and
`"NO_RESPONDERS"` when nobody listens on `subject`.

The call blocks its thread (the garbage collector and other threads go on): a responder in the
same Julia process must run on another thread (`Threads.@spawn`, Julia started with
`--threads=2` or more).
"""
function request(client::Client, subject::AbstractString, data; timeout::Real = 10,
                 as_dataframe::Bool = false, options...)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    with_payloads(data) do payloads, _
        with_send_options(; options...) do opts
            check(nb_client_request(client, subject, payloads, length(payloads), opts,
                                    timeout_ms(timeout), out))
        end
    end
    return received_envelope(out[]; as_dataframe)
end

"""
    env, msg_json = reply(client, request::Envelope, data; options...)

Answers a received `request`: publishes `data` to its `reply_to`, with `reply_to_msg_id` set to
its `msg_id`, its `correlation_id`, and its sender as receiver, unless `options` (envelope
fields, as for [`smartsend`](@ref)) set them.
Returns what [`smartsend`](@ref) returns. Throws `"INVALID_ARGUMENT"` when the request has no
`reply_to`.
"""
function reply(client::Client, request::Envelope, data; options...)
    handle = getfield(request, :_handle)
    handle === nothing && throw(binding_error(NB_ERR_INVALID_ARGUMENT,
                                              "the request envelope has no reply_to subject to answer on"))
    env_out = Ref{Ptr{Cvoid}}(C_NULL)
    json_out = Ref{Ptr{Cchar}}(C_NULL)
    items = with_payloads(data) do payloads, items
        with_send_options(; options...) do opts
            check(nb_client_reply(client, handle, payloads, length(payloads), opts,
                                  env_out, json_out))
        end
        items
    end
    return sent(env_out[], json_out[], items)
end
