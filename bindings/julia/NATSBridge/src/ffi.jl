# The C ABI of libnatsbridge: finding and loading the library, and one thin Julia function per C
# function used, named after it. Every `ccall` of the package is in this file, and
# tools/check_declarations.py compares each one with include/natsbridge.h.
#
# Functions are called through their address (`cfunc(:nb_x)`), looked up in the library opened
# by `load_library()`: the library is found at run time, which the `(:name, library)` form of
# `ccall` does not support the same way across Julia versions.
#
# Blocking calls (connect, send, receive, request, subscribe, close) are wrapped in `@gcsafe`:
# while the library waits, this thread lets the garbage collector and the other Julia threads
# run. No C function is ever given Julia code to run: delivery wakes a `Base.AsyncCondition`
# through `uv_async_send` (see subscription.jl).

"""The `NB_ABI_VERSION` of include/natsbridge.h this binding was written for."""
const ABI_VERSION = UInt32(1)

const LIBRARY = Ref{Ptr{Cvoid}}(C_NULL)
const LIBRARY_PATH = Ref{String}("")

# Status codes of the header (NB_OK, NB_ERR_*) that the binding acts on.
const NB_OK = Int32(0)
const NB_ERR_INVALID_ARGUMENT = Int32(-1)
const NB_ERR_CLOSED = Int32(-3)
const NB_ERR_MESSAGES_DROPPED = Int32(-13)
const NB_ERR_PULL_TIMEOUT = Int32(-104)

const LOG_LEVELS = Dict(:off => Int32(0), :warn => Int32(1), :info => Int32(2), :debug => Int32(3))

library_file_name() = Sys.iswindows() ? "natsbridge.dll" : "libnatsbridge." * Libdl.dlext

"""
    library_candidates() -> Vector{String}

Where the library is looked for, in order: `ENV["NATSBRIDGE_LIB"]` alone when it is set;
otherwise this repository's `target/release` and `target/debug`, then the system's library
path (`Libdl.find_library`).
"""
function library_candidates()
    from_env = get(ENV, "NATSBRIDGE_LIB", "")
    isempty(from_env) || return [from_env]
    repo = normpath(joinpath(@__DIR__, "..", "..", "..", ".."))
    candidates = [joinpath(repo, "target", profile, library_file_name())
                  for profile in ("release", "debug")]
    system = Libdl.find_library(["libnatsbridge", "natsbridge"])
    isempty(system) || push!(candidates, system)
    return candidates
end

function load_library()
    candidates = library_candidates()
    path = nothing
    for c in candidates
        # A bare name from find_library is resolved by the dynamic loader itself.
        if isfile(c) || !occursin(Base.Filesystem.path_separator, c)
            path = c
            break
        end
    end
    path === nothing && error(
        "NATSBridge: cannot find libnatsbridge (looked for $(join(candidates, ", "))). Build it " *
        "at the repository root with `cargo build --release`, or set NATSBRIDGE_LIB to the " *
        "path of $(library_file_name()).")
    handle = Libdl.dlopen(path; throw_error = false)
    handle === nothing && error("NATSBridge: cannot load $path (set NATSBRIDGE_LIB to a " *
                                "working $(library_file_name())).")
    LIBRARY[] = handle
    LIBRARY_PATH[] = path
    abi = nb_abi_version()
    abi == ABI_VERSION || error(
        "NATSBridge: $path has C ABI version $abi; this binding was written for version " *
        "$ABI_VERSION. Rebuild the library from the same checkout (`cargo build --release`) " *
        "or point NATSBRIDGE_LIB at a matching library.")
    return path
end

"""The address of the library's function `name`."""
cfunc(name::Symbol) = Libdl.dlsym(LIBRARY[], name)

"""
    @gcsafe ccall(f, Ret, (T1, T2, ...), a1, a2, ...)

The `ccall`, made in a GC-safe region: the arguments are converted first (that may allocate),
then the thread tells the runtime that it runs no Julia code until the C function returns, so
the garbage collector and the other Julia threads need not wait for it. For blocking calls into
the library, which never call back into Julia.
"""
macro gcsafe(call)
    (Meta.isexpr(call, :call) && call.args[1] === :ccall) ||
        throw(ArgumentError("@gcsafe takes a ccall(...) expression"))
    target, rettype, argtypes = call.args[2], call.args[3], call.args[4]
    Meta.isexpr(argtypes, :tuple) ||
        throw(ArgumentError("@gcsafe: the argument types of a ccall must be a tuple literal"))
    types = argtypes.args
    values = call.args[5:end]
    length(types) == length(values) ||
        throw(ArgumentError("@gcsafe: $(length(types)) argument types, $(length(values)) arguments"))
    fptr = gensym("fptr")
    kept = [gensym("kept") for _ in values]
    raw = [gensym("raw") for _ in values]
    state = gensym("gc_state")
    result = gensym("result")
    converts = [:($k = Base.cconvert($(esc(T)), $(esc(v)))) for (k, T, v) in zip(kept, types, values)]
    unsafes = [:($r = Base.unsafe_convert($(esc(T)), $k)) for (r, T, k) in zip(raw, types, kept)]
    # The values are converted already: the inner call takes them as the raw pointers they are.
    rawtypes = [Meta.isexpr(T, :curly) && T.args[1] === :Ref ? Expr(:curly, :Ptr, T.args[2:end]...) : T
                for T in types]
    inner = Expr(:call, :ccall, fptr, esc(rettype), Expr(:tuple, map(esc, rawtypes)...), raw...)
    return quote
        $fptr = $(esc(target))::Ptr{Cvoid}
        $(converts...)
        GC.@preserve $(kept...) begin
            $(unsafes...)
            $state = ccall(:jl_gc_safe_enter, Int8, ())
            $result = $inner
            ccall(:jl_gc_safe_leave, Cvoid, (Int8,), $state)
            $result
        end
    end
end

"""Mirrors `nb_payload_in` of include/natsbridge.h: one payload to send, as bytes."""
struct nb_payload_in
    dataname::Ptr{Cchar}
    payload_type::Ptr{Cchar}
    data::Ptr{UInt8}
    len::Csize_t
    metadata_json::Ptr{Cchar}
end

# ---- library -------------------------------------------------------------------------------

nb_version() = ccall(cfunc(:nb_version), Ptr{Cchar}, ())
nb_abi_version() = ccall(cfunc(:nb_abi_version), UInt32, ())
nb_log_set_level(level) = ccall(cfunc(:nb_log_set_level), Int32, (Int32,), level)
nb_string_free(s) = ccall(cfunc(:nb_string_free), Cvoid, (Ptr{Cchar},), s)
nb_last_error_message(buf, cap, needed) =
    ccall(cfunc(:nb_last_error_message), Int32, (Ptr{Cvoid}, Csize_t, Ref{Csize_t}),
          buf, cap, needed)
nb_status_str(status) = ccall(cfunc(:nb_status_str), Ptr{Cchar}, (Int32,), status)
nb_status_code_name(status) = ccall(cfunc(:nb_status_code_name), Ptr{Cchar}, (Int32,), status)

# ---- client --------------------------------------------------------------------------------

nb_client_connect(cfg, out) =
    @gcsafe ccall(cfunc(:nb_client_connect), Int32, (Ptr{Cvoid}, Ref{Ptr{Cvoid}}), cfg, out)
nb_client_flush(client) =
    @gcsafe ccall(cfunc(:nb_client_flush), Int32, (Ptr{Cvoid},), client)
nb_client_close(client) =
    @gcsafe ccall(cfunc(:nb_client_close), Int32, (Ptr{Cvoid},), client)
nb_client_free(client) = ccall(cfunc(:nb_client_free), Cvoid, (Ptr{Cvoid},), client)
nb_client_smartsend(client, subject, payloads, count, options, out_envelope, out_json) =
    @gcsafe ccall(cfunc(:nb_client_smartsend), Int32,
                  (Ptr{Cvoid}, Cstring, Ptr{nb_payload_in}, Csize_t, Ptr{Cvoid},
                   Ref{Ptr{Cvoid}}, Ref{Ptr{Cchar}}),
                  client, subject, payloads, count, options, out_envelope, out_json)
nb_client_smartreceive(client, message, len, out) =
    @gcsafe ccall(cfunc(:nb_client_smartreceive), Int32,
                  (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ref{Ptr{Cvoid}}), client, message, len, out)
nb_smartreceive(cfg, message, len, out) =
    @gcsafe ccall(cfunc(:nb_smartreceive), Int32,
                  (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ref{Ptr{Cvoid}}), cfg, message, len, out)
nb_client_request(client, subject, payloads, count, options, timeout_ms, out_reply) =
    @gcsafe ccall(cfunc(:nb_client_request), Int32,
                  (Ptr{Cvoid}, Cstring, Ptr{nb_payload_in}, Csize_t, Ptr{Cvoid}, Int64,
                   Ref{Ptr{Cvoid}}),
                  client, subject, payloads, count, options, timeout_ms, out_reply)
nb_client_reply(client, request, payloads, count, options, out_envelope, out_json) =
    @gcsafe ccall(cfunc(:nb_client_reply), Int32,
                  (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{nb_payload_in}, Csize_t, Ptr{Cvoid},
                   Ref{Ptr{Cvoid}}, Ref{Ptr{Cchar}}),
                  client, request, payloads, count, options, out_envelope, out_json)
nb_client_max_payload(client, out) =
    ccall(cfunc(:nb_client_max_payload), Int32, (Ptr{Cvoid}, Ref{Csize_t}), client, out)
nb_client_dropped(client, out) =
    ccall(cfunc(:nb_client_dropped), Int32, (Ptr{Cvoid}, Ref{UInt64}), client, out)

# ---- config --------------------------------------------------------------------------------

nb_config_from_env(out) = ccall(cfunc(:nb_config_from_env), Int32, (Ref{Ptr{Cvoid}},), out)
nb_config_free(cfg) = ccall(cfunc(:nb_config_free), Cvoid, (Ptr{Cvoid},), cfg)
nb_config_set_nats_url(cfg, url) =
    ccall(cfunc(:nb_config_set_nats_url), Int32, (Ptr{Cvoid}, Cstring), cfg, url)
nb_config_set_fileserver_url(cfg, url) =
    ccall(cfunc(:nb_config_set_fileserver_url), Int32, (Ptr{Cvoid}, Cstring), cfg, url)
nb_config_set_fileserver_token(cfg, token) =
    ccall(cfunc(:nb_config_set_fileserver_token), Int32, (Ptr{Cvoid}, Cstring), cfg, token)
nb_config_set_size_threshold(cfg, bytes) =
    ccall(cfunc(:nb_config_set_size_threshold), Int32, (Ptr{Cvoid}, Csize_t), cfg, bytes)
nb_config_set_sender_name(cfg, name) =
    ccall(cfunc(:nb_config_set_sender_name), Int32, (Ptr{Cvoid}, Cstring), cfg, name)
nb_config_set_client_name(cfg, name) =
    ccall(cfunc(:nb_config_set_client_name), Int32, (Ptr{Cvoid}, Cstring), cfg, name)
nb_config_set_connect_timeout_ms(cfg, ms) =
    ccall(cfunc(:nb_config_set_connect_timeout_ms), Int32, (Ptr{Cvoid}, UInt64), cfg, ms)
nb_config_set_operation_timeout_ms(cfg, ms) =
    ccall(cfunc(:nb_config_set_operation_timeout_ms), Int32, (Ptr{Cvoid}, UInt64), cfg, ms)
nb_config_set_http_idle_timeout_ms(cfg, ms) =
    ccall(cfunc(:nb_config_set_http_idle_timeout_ms), Int32, (Ptr{Cvoid}, UInt64), cfg, ms)
nb_config_set_subscription_queue(cfg, envelopes) =
    ccall(cfunc(:nb_config_set_subscription_queue), Int32, (Ptr{Cvoid}, Csize_t), cfg, envelopes)
nb_config_set_token(cfg, token) =
    ccall(cfunc(:nb_config_set_token), Int32, (Ptr{Cvoid}, Cstring), cfg, token)
nb_config_set_user_password(cfg, user, password) =
    ccall(cfunc(:nb_config_set_user_password), Int32, (Ptr{Cvoid}, Cstring, Cstring),
          cfg, user, password)
nb_config_set_creds_file(cfg, path) =
    ccall(cfunc(:nb_config_set_creds_file), Int32, (Ptr{Cvoid}, Cstring), cfg, path)
nb_config_set_tls_required(cfg, required) =
    ccall(cfunc(:nb_config_set_tls_required), Int32, (Ptr{Cvoid}, Bool), cfg, required)
nb_config_add_tls_root_certificate(cfg, pem_path) =
    ccall(cfunc(:nb_config_add_tls_root_certificate), Int32, (Ptr{Cvoid}, Cstring), cfg, pem_path)
nb_config_set_tls_client_certificate(cfg, cert_path, key_path) =
    ccall(cfunc(:nb_config_set_tls_client_certificate), Int32, (Ptr{Cvoid}, Cstring, Cstring),
          cfg, cert_path, key_path)
nb_config_set_link_oneshot(cfg, oneshot) =
    ccall(cfunc(:nb_config_set_link_oneshot), Int32, (Ptr{Cvoid}, Bool), cfg, oneshot)
nb_config_set_link_ttl_s(cfg, seconds) =
    ccall(cfunc(:nb_config_set_link_ttl_s), Int32, (Ptr{Cvoid}, UInt64), cfg, seconds)
nb_config_set_fallback_to_direct(cfg, fallback) =
    ccall(cfunc(:nb_config_set_fallback_to_direct), Int32, (Ptr{Cvoid}, Bool), cfg, fallback)
nb_config_add_allowed_origin(cfg, origin) =
    ccall(cfunc(:nb_config_add_allowed_origin), Int32, (Ptr{Cvoid}, Cstring), cfg, origin)
nb_config_set_max_download_bytes(cfg, bytes) =
    ccall(cfunc(:nb_config_set_max_download_bytes), Int32, (Ptr{Cvoid}, UInt64), cfg, bytes)
nb_config_set_download_retry(cfg, max_attempts, base_delay_ms, max_delay_ms) =
    ccall(cfunc(:nb_config_set_download_retry), Int32, (Ptr{Cvoid}, UInt32, UInt64, UInt64),
          cfg, max_attempts, base_delay_ms, max_delay_ms)
nb_config_set_parallel_downloads(cfg, n) =
    ccall(cfunc(:nb_config_set_parallel_downloads), Int32, (Ptr{Cvoid}, Csize_t), cfg, n)
nb_config_set_download_timeout_ms(cfg, ms) =
    ccall(cfunc(:nb_config_set_download_timeout_ms), Int32, (Ptr{Cvoid}, UInt64), cfg, ms)
nb_config_set_min_transfer_rate(cfg, bytes_per_second) =
    ccall(cfunc(:nb_config_set_min_transfer_rate), Int32, (Ptr{Cvoid}, UInt64),
          cfg, bytes_per_second)
nb_config_set_ordered_subscriptions(cfg, ordered) =
    ccall(cfunc(:nb_config_set_ordered_subscriptions), Int32, (Ptr{Cvoid}, Bool), cfg, ordered)

# ---- envelope ------------------------------------------------------------------------------

nb_envelope_free(env) = ccall(cfunc(:nb_envelope_free), Cvoid, (Ptr{Cvoid},), env)
nb_envelope_header_json(env) =
    ccall(cfunc(:nb_envelope_header_json), Ptr{Cchar}, (Ptr{Cvoid},), env)
nb_envelope_payload_count(env) =
    ccall(cfunc(:nb_envelope_payload_count), Csize_t, (Ptr{Cvoid},), env)
nb_envelope_payload_id(env, index) =
    ccall(cfunc(:nb_envelope_payload_id), Ptr{Cchar}, (Ptr{Cvoid}, Csize_t), env, index)
nb_envelope_payload_dataname(env, index) =
    ccall(cfunc(:nb_envelope_payload_dataname), Ptr{Cchar}, (Ptr{Cvoid}, Csize_t), env, index)
nb_envelope_payload_type(env, index) =
    ccall(cfunc(:nb_envelope_payload_type), Ptr{Cchar}, (Ptr{Cvoid}, Csize_t), env, index)
nb_envelope_payload_transport(env, index) =
    ccall(cfunc(:nb_envelope_payload_transport), Ptr{Cchar}, (Ptr{Cvoid}, Csize_t), env, index)
nb_envelope_payload_size(env, index) =
    ccall(cfunc(:nb_envelope_payload_size), UInt64, (Ptr{Cvoid}, Csize_t), env, index)
nb_envelope_payload_url(env, index) =
    ccall(cfunc(:nb_envelope_payload_url), Ptr{Cchar}, (Ptr{Cvoid}, Csize_t), env, index)
nb_envelope_payload_metadata_json(env, index) =
    ccall(cfunc(:nb_envelope_payload_metadata_json), Ptr{Cchar}, (Ptr{Cvoid}, Csize_t),
          env, index)
nb_envelope_payload_bytes(env, index, data, len) =
    ccall(cfunc(:nb_envelope_payload_bytes), Int32,
          (Ptr{Cvoid}, Csize_t, Ref{Ptr{UInt8}}, Ref{Csize_t}), env, index, data, len)

# ---- send options --------------------------------------------------------------------------

nb_send_options_new(out) = ccall(cfunc(:nb_send_options_new), Int32, (Ref{Ptr{Cvoid}},), out)
nb_send_options_free(opts) = ccall(cfunc(:nb_send_options_free), Cvoid, (Ptr{Cvoid},), opts)
nb_send_options_set_correlation_id(opts, value) =
    ccall(cfunc(:nb_send_options_set_correlation_id), Int32, (Ptr{Cvoid}, Cstring), opts, value)
nb_send_options_set_msg_id(opts, value) =
    ccall(cfunc(:nb_send_options_set_msg_id), Int32, (Ptr{Cvoid}, Cstring), opts, value)
nb_send_options_set_msg_purpose(opts, value) =
    ccall(cfunc(:nb_send_options_set_msg_purpose), Int32, (Ptr{Cvoid}, Cstring), opts, value)
nb_send_options_set_sender_name(opts, value) =
    ccall(cfunc(:nb_send_options_set_sender_name), Int32, (Ptr{Cvoid}, Cstring), opts, value)
nb_send_options_set_sender_id(opts, value) =
    ccall(cfunc(:nb_send_options_set_sender_id), Int32, (Ptr{Cvoid}, Cstring), opts, value)
nb_send_options_set_receiver_name(opts, value) =
    ccall(cfunc(:nb_send_options_set_receiver_name), Int32, (Ptr{Cvoid}, Cstring), opts, value)
nb_send_options_set_receiver_id(opts, value) =
    ccall(cfunc(:nb_send_options_set_receiver_id), Int32, (Ptr{Cvoid}, Cstring), opts, value)
nb_send_options_set_reply_to(opts, value) =
    ccall(cfunc(:nb_send_options_set_reply_to), Int32, (Ptr{Cvoid}, Cstring), opts, value)
nb_send_options_set_reply_to_msg_id(opts, value) =
    ccall(cfunc(:nb_send_options_set_reply_to_msg_id), Int32, (Ptr{Cvoid}, Cstring), opts, value)
nb_send_options_set_metadata_json(opts, json) =
    ccall(cfunc(:nb_send_options_set_metadata_json), Int32, (Ptr{Cvoid}, Cstring), opts, json)
nb_send_options_set_size_threshold(opts, bytes) =
    ccall(cfunc(:nb_send_options_set_size_threshold), Int32, (Ptr{Cvoid}, Csize_t), opts, bytes)
nb_send_options_set_fallback_to_direct(opts, fallback) =
    ccall(cfunc(:nb_send_options_set_fallback_to_direct), Int32, (Ptr{Cvoid}, Bool),
          opts, fallback)
nb_send_options_set_confirm(opts, confirm) =
    ccall(cfunc(:nb_send_options_set_confirm), Int32, (Ptr{Cvoid}, Bool), opts, confirm)

# ---- subscription --------------------------------------------------------------------------

nb_client_subscribe(client, subject, queue_group, out) =
    @gcsafe ccall(cfunc(:nb_client_subscribe), Int32,
                  (Ptr{Cvoid}, Cstring, Cstring, Ref{Ptr{Cvoid}}), client, subject, queue_group, out)
# Only ever called with timeout 0: it does not block.
nb_subscription_next(sub, timeout_ms, out) =
    ccall(cfunc(:nb_subscription_next), Int32, (Ptr{Cvoid}, Int64, Ref{Ptr{Cvoid}}),
          sub, timeout_ms, out)
nb_subscription_set_wake(sub, wake, ctx) =
    ccall(cfunc(:nb_subscription_set_wake), Int32, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}),
          sub, wake, ctx)
nb_subscription_dropped(sub, out) =
    ccall(cfunc(:nb_subscription_dropped), Int32, (Ptr{Cvoid}, Ref{UInt64}), sub, out)
nb_subscription_close(sub) =
    @gcsafe ccall(cfunc(:nb_subscription_close), Int32, (Ptr{Cvoid},), sub)
nb_subscription_free(sub) =
    @gcsafe ccall(cfunc(:nb_subscription_free), Cvoid, (Ptr{Cvoid},), sub)
