# Starts moto's server on a free loopback port for test/moto and says which
# on its first line of output ("moto <version> port <n>"), or why it cannot
# ("missing <reason>"). It stops when its standard input closes: the Go test
# that started it closes it in its cleanup.
import sys

try:
    import moto
    from importlib.metadata import version
    from moto.server import ThreadedMotoServer
except Exception as e:  # moto, or flask/werkzeug for its server mode, absent
    print("missing", type(e).__name__, e, flush=True)
    sys.exit(0)

v = version("moto")
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("moto", v, "port", server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
