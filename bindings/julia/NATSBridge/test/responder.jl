# A responder in a process of its own, for the request test of runtests.jl:
#   julia --project=... responder.jl NATS_URL FILESERVER_URL SUBJECT
# Answers each request on SUBJECT with its payloads, the first renamed "echo"; prints "ready"
# once subscribed. Runs until killed.
using NATSBridge

nats_url, fileserver_url, subject = ARGS
client = Client(; nats_url, fileserver_url, sender_name = "julia-responder")
sub = subscribe(client, subject)
println("ready")
flush(stdout)
for req in sub
    payloads = req["payloads"]
    answer = [(i == 1 ? "echo" : name, value, type) for (i, (name, value, type)) in enumerate(payloads)]
    reply(client, req, answer)
end
