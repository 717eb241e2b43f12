# A tiny web service for the compose scenario (python3-minimal has no
# http.server): GET / counts visits in the named volume, GET /health is 200.
import os
import socket

DATA = "/data/visits"


def visits():
    n = 0
    if os.path.exists(DATA):
        with open(DATA) as f:
            n = int(f.read() or "0")
    n += 1
    with open(DATA, "w") as f:
        f.write(str(n))
    return n


s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8000))
s.listen(16)
print("app listening on 8000", flush=True)
while True:
    c, _ = s.accept()
    try:
        req = c.recv(4096).decode("latin-1")
        if " " not in req:
            continue  # a bare connect (the healthcheck): no request
        path = req.split(" ")[1]
        if path == "/health":
            body = "ok\n"
        else:
            body = "hello from app on %s, visit %d\n" % (socket.gethostname(), visits())
            print("served %s" % path, flush=True)
        c.sendall(("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
    finally:
        c.close()
