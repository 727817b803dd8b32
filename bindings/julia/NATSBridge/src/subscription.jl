# Subscriptions. The library queues decoded envelopes; Julia never runs code on a library
# thread. The library's wake callback is libuv's own `uv_async_send`, given the handle of a
# `Base.AsyncCondition`: on a library thread it only signals Julia's event loop, and a Julia
# task then drains the queue with non-blocking pulls (timeout 0).

"""
    Subscription

Envelopes arriving on a subject, made by [`subscribe`](@ref). `take!(sub)` waits for the next
one (`take!(sub; timeout = seconds)` returns `nothing` when none came in time); `for env in sub`
iterates until the subscription closes. A message that could not be delivered (a failed
download, an invalid envelope, messages dropped because the consumer fell behind) is thrown as
a `NATSBridgeError` by the `take!` or iteration that meets it; the next one goes on.
`close(sub)` unsubscribes.
"""
mutable struct Subscription
    ptr::Ptr{Cvoid}
    subject::String
    as_dataframe::Bool
    wake::Base.AsyncCondition   # its handle is the library's wake context
    ready::Base.Event           # set by each wake-up (and by timeouts)
    pulling::ReentrantLock      # one puller at a time, so that envelopes stay in order
    lock::ReentrantLock         # guards `ptr` against its release
    @atomic closing::Bool
    handler::Union{Nothing,Task}
end

Base.unsafe_convert(::Type{Ptr{Cvoid}}, s::Subscription) = s.ptr

# Open subscriptions, closed at exit. Strong: a subscription lives until it is closed.
const OPEN_SUBSCRIPTIONS = IdDict{Subscription,Nothing}()
const OPEN_SUBSCRIPTIONS_LOCK = ReentrantLock()

"""
    subscribe(client, subject; queue_group = "", as_dataframe = false) -> Subscription
    subscribe(f, client, subject; queue_group = "", as_dataframe = false, on_error) -> Subscription

Subscribes to `subject` (wildcards allowed), in `queue_group` if one is given. Envelopes arrive
decoded, link payloads downloaded. The second form calls `f(env)` for each envelope on a task
of its own (`Threads.@spawn`) until the subscription is closed; a failure of `f` or an
undeliverable message goes to `on_error(exception)` (default: logged with `@error`).
"""
function subscribe(client::Client, subject::AbstractString; queue_group::AbstractString = "",
                   as_dataframe::Bool = false)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(nb_client_subscribe(client, subject, queue_group, out))
    ready = Base.Event(true)
    wake = Base.AsyncCondition(_ -> notify(ready))
    sub = Subscription(out[], String(subject), as_dataframe, wake, ready, ReentrantLock(),
                       ReentrantLock(), false, nothing)
    # uv_async_send(handle) is thread-safe and runs no Julia code: the library may call it from
    # any of its threads. It is looked up now, never stored in the precompiled image.
    status = nb_subscription_set_wake(sub, cglobal(:uv_async_send), wake)
    if status != NB_OK
        err = library_error(status)
        release!(sub)
        throw(err)
    end
    Base.@lock OPEN_SUBSCRIPTIONS_LOCK OPEN_SUBSCRIPTIONS[sub] = nothing
    return sub
end

function subscribe(f::Function, client::Client, subject::AbstractString;
                   on_error = log_handler_error, kwargs...)
    sub = subscribe(client, subject; kwargs...)
    sub.handler = errormonitor(Threads.@spawn serve(f, sub, on_error))
    return sub
end

log_handler_error(e) =
    @error "NATSBridge: a subscription handler failed" exception = (e, catch_backtrace())

function serve(f, sub::Subscription, on_error)
    while true
        env = try
            next_envelope(sub, Inf)
        catch e
            e isa NATSBridgeError || rethrow()
            on_error(e)
            continue
        end
        env === :closed && return nothing
        try
            f(env)
        catch e
            on_error(e)
        end
    end
end

"""
The next envelope; `nothing` when `timeout` seconds passed first; `:closed` once the
subscription is closed and drained. Throws the error of an undeliverable message.
"""
function next_envelope(sub::Subscription, timeout::Real)
    deadline = time() + timeout
    lock(sub.pulling) do
        while true
            result = try_pull(sub)
            result === :empty || return result
            remaining = deadline - time()
            remaining > 0 || return nothing
            wait_ready(sub.ready, remaining)
        end
    end
end

"""One non-blocking pull: an Envelope, `:empty`, or `:closed`."""
function try_pull(sub::Subscription)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    status, err = lock(sub.lock) do
        ((@atomic sub.closing) || sub.ptr == C_NULL) && return (NB_ERR_CLOSED, nothing)
        st = nb_subscription_next(sub, Int64(0), out)
        # The message of a failure is read at once, on this thread.
        failed = !(st == NB_OK || st == NB_ERR_PULL_TIMEOUT || st == NB_ERR_CLOSED)
        return (st, failed ? library_error(st) : nothing)
    end
    status == NB_OK && return received_envelope(out[]; as_dataframe = sub.as_dataframe)
    status == NB_ERR_PULL_TIMEOUT && return :empty
    if status == NB_ERR_CLOSED
        # Closed (by its client) and drained: release it now.
        lock(() -> release!(sub), sub.lock)
        return :closed
    end
    throw(err)
end

function wait_ready(ready::Base.Event, seconds::Real)
    if isinf(seconds)
        wait(ready)
        return nothing
    end
    timer = Timer(_ -> notify(ready), seconds)
    try
        wait(ready)
    finally
        close(timer)
    end
    return nothing
end

"""
Frees the subscription (which stops its wake-ups), then closes the AsyncCondition: in this
order, the library never signals a closed handle. Called with `sub.lock` held (or before the
subscription is shared).
"""
function release!(sub::Subscription)
    p = sub.ptr
    p == C_NULL && return nothing
    sub.ptr = C_NULL
    nb_subscription_free(p)
    close(sub.wake)
    Base.@lock OPEN_SUBSCRIPTIONS_LOCK delete!(OPEN_SUBSCRIPTIONS, sub)
    return nothing
end

"""
    take!(sub::Subscription; timeout = nothing) -> Envelope

The next envelope, waiting for it without blocking other tasks. With a `timeout` in seconds,
`nothing` when none came in time. Throws a `NATSBridgeError` `"CLOSED"` once the subscription
is closed and drained, and the error of a message that could not be delivered.
"""
function Base.take!(sub::Subscription; timeout::Union{Real,Nothing} = nothing)
    result = next_envelope(sub, timeout === nothing ? Inf : timeout)
    result === :closed &&
        throw(binding_error(NB_ERR_CLOSED, "the subscription to $(sub.subject) is closed"))
    return result
end

function Base.iterate(sub::Subscription, _state = nothing)
    result = next_envelope(sub, Inf)
    result === :closed && return nothing
    return (result, nothing)
end

Base.IteratorSize(::Type{Subscription}) = Base.SizeUnknown()
Base.eltype(::Type{Subscription}) = Envelope

"""Messages dropped so far because the subscription's queue was full."""
function dropped(sub::Subscription)
    out = Ref{UInt64}(0)
    lock(sub.lock) do
        sub.ptr == C_NULL && return nothing
        check(nb_subscription_dropped(sub, out))
    end
    return Int(out[])
end

Base.isopen(sub::Subscription) = !(@atomic sub.closing) && sub.ptr != C_NULL

"""
    close(sub::Subscription)

Unsubscribes and releases the subscription; envelopes still queued are dropped. A task waiting
in `take!` gets `"CLOSED"`. With a handler (`subscribe(f, ...)`), waits until it returns.
"""
function Base.close(sub::Subscription; wait_handler::Bool = true)
    @atomic sub.closing = true
    notify(sub.ready)  # a puller waiting for envelopes gives up now
    lock(() -> release!(sub), sub.lock)
    handler = sub.handler
    if wait_handler && handler !== nothing && handler !== current_task()
        try
            wait(handler)
        catch
            # its failure was reported by errormonitor
        end
    end
    return nothing
end

Base.show(io::IO, sub::Subscription) =
    print(io, "NATSBridge.Subscription(", repr(sub.subject), isopen(sub) ? ")" : ", closed)")

"""Closes every subscription and client still open (at exit)."""
function close_everything()
    subs = Base.@lock OPEN_SUBSCRIPTIONS_LOCK collect(keys(OPEN_SUBSCRIPTIONS))
    for sub in subs
        try
            close(sub; wait_handler = false)
        catch
        end
    end
    for client in collect(keys(OPEN_CLIENTS))
        try
            close(client)
        catch
        end
    end
    return nothing
end
