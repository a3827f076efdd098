"""The uwsgi protocol client: requests straight to an instance's socket,
without nginx (the reliability tests' on_node.py uses it too)."""
import socket
import struct


def uwsgi_packet(env):
    """Encode a WSGI environ as a uwsgi protocol request (modifier 0)."""
    body = b""
    for key, value in env.items():
        k, v = key.encode(), value.encode()
        body += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return struct.pack("<BHB", 0, len(body), 0) + body


def uwsgi_exchange(host, port, method="GET", path="/_health", headers=None, body=b"", timeout=5.0):
    """One request straight to a uWSGI socket: (status, headers, body).

    Raises OSError when it cannot connect or the socket closes without an answer."""
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "REQUEST_URI": path,
           "QUERY_STRING": "", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost",
           "CONTENT_LENGTH": str(len(body))}
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(uwsgi_packet(env) + body)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, response_body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise ConnectionResetError("closed without an answer") from None
    response_headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return status, response_headers, response_body


def uwsgi_get(host, port, path="/_health", timeout=5.0):
    """GET path from a uWSGI socket; (status, headers, body), or None if unreachable."""
    try:
        return uwsgi_exchange(host, port, "GET", path, timeout=timeout)
    except OSError:
        return None


def port_open(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def serves(host, port):
    """An instance serves once its app answers over the uwsgi protocol."""
    response = uwsgi_get(host, port)
    return response is not None and response[0] < 500
