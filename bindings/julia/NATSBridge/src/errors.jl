# Errors: every failure of the library becomes a NATSBridgeError carrying its wire code.

"""
    NATSBridgeError(status, code, message)

A failure reported by libnatsbridge. `code` is the stable name of the failure: the wire error
code where there is one (`"DOWNLOAD_FAILED"`, `"INVALID_PAYLOAD_TYPE"`, `"NATS_CONNECTION_FAILED"`,
...), or the C boundary's own (`"NULL_ARG"`, `"UTF8"`, ...). `status` is the library's negative
status number, `message` the detail.
"""
struct NATSBridgeError <: Exception
    status::Int32
    code::String
    message::String
end

Base.showerror(io::IO, e::NATSBridgeError) =
    print(io, "NATSBridgeError ", e.code, " (", e.status, "): ", e.message)

status_code_name(status::Integer) = unsafe_string(nb_status_code_name(Int32(status)))

"""
    dropped(e::NATSBridgeError) -> Int

For a `"MESSAGES_DROPPED"` error (from `flush`, `close`, or a send with `confirm = true`): how
many messages it reports as possibly lost (1 for a confirmed send's own); 0 for other codes.
"""
function dropped(e::NATSBridgeError)
    e.status == NB_ERR_MESSAGES_DROPPED || return 0
    m = match(r"(?:^|: )(\d+) message\(s\)", e.message)
    return m === nothing ? 1 : parse(Int, m.captures[1])
end

"""The message of the last failing library call on this thread ("" if none)."""
function last_error_message()
    needed = Ref{Csize_t}(0)
    nb_last_error_message(C_NULL, 0, needed)
    n = Int(needed[])
    n <= 1 && return ""
    buf = Vector{UInt8}(undef, n)
    nb_last_error_message(buf, n, needed)
    return String(buf[1:min(n, Int(needed[])) - 1])
end

"""
The error for a failed call, with the message the library left on this thread. Called right
after the call, before anything can yield: a task moves between threads only when it yields.
"""
function library_error(status::Integer)
    message = last_error_message()
    isempty(message) && (message = unsafe_string(nb_status_str(Int32(status))))
    return NATSBridgeError(Int32(status), status_code_name(status), message)
end

"""An error of the binding itself, with the library's name for `status`."""
binding_error(status::Integer, message::AbstractString) =
    NATSBridgeError(Int32(status), status_code_name(status), String(message))

"""Throws the library's error unless `status` is NB_OK."""
@inline function check(status::Integer)
    status == NB_OK || throw(library_error(status))
    return nothing
end
