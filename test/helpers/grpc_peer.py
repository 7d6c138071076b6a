"""A gRPC C-core peer (Debian's python3-grpcio) for interop tests, driven by test/helpers/grpcio.ts.

  grpc_peer.py server HOST:PORT
      Serves /interop.Echo/Unary with generic handlers (raw bytes, no codegen) and prints
      `listening PORT` once bound. The request text says what to do:
        ok:TEXT       reply TEXT, trailing metadata x-trailer: done
        meta:TEXT     the same, after sending initial metadata x-pod: grpcio first
        fail:CODE     abort with status CODE before anything else (C-core sends trailers-only)
        slow:MS:TEXT  reply TEXT after MS milliseconds
  grpc_peer.py client HOST:PORT CALLS_JSON
      CALLS_JSON: {"requests": ["ok:a", ...], "timeout": SECONDS}. Sends every request at once
      on ONE channel and prints one JSON line: [{code, details, reply, initial, trailing}, ...].
"""

import json
import sys
import threading
import time
from concurrent import futures

import grpc

METHOD = "/interop.Echo/Unary"


def unary(request, context):
    text = request.decode()
    kind, _, rest = text.partition(":")
    if kind == "fail":
        context.abort(code_of(int(rest)), "failing as asked: " + text)
    if kind == "meta":
        context.send_initial_metadata((("x-pod", "grpcio"),))
    if kind == "slow":
        ms, _, rest = rest.partition(":")
        time.sleep(int(ms) / 1000)
    context.set_trailing_metadata((("x-trailer", "done"),))
    return rest.encode()


def code_of(number):
    return next(c for c in grpc.StatusCode if c.value[0] == number)


def serve(address):
    handler = grpc.method_handlers_generic_handler(
        "interop.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(unary)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), handlers=(handler,))
    port = server.add_insecure_port(address)
    server.start()
    print("listening %d" % port, flush=True)
    # Runs until the test kills it (or stdin closes, when the test process is gone).
    threading.Thread(target=lambda: (sys.stdin.read(), server.stop(0)), daemon=True).start()
    server.wait_for_termination()


def call_all(address, spec):
    requests = spec["requests"]
    timeout = spec.get("timeout", 10)
    channel = grpc.insecure_channel(address, options=(("grpc.enable_http_proxy", 0),))
    stub = channel.unary_unary(METHOD)
    calls = [stub.future(r.encode(), timeout=timeout) for r in requests]
    results = []
    for call in calls:
        try:
            reply = call.result().decode()
        except grpc.RpcError:
            reply = None
        results.append(
            {
                "code": call.code().name,
                "details": call.details(),
                "reply": reply,
                "initial": dict(call.initial_metadata() or ()),
                "trailing": dict(call.trailing_metadata() or ()),
            }
        )
    channel.close()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2])
    else:
        call_all(sys.argv[2], json.loads(sys.argv[3]))
