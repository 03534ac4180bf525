"""Sends raw HTTP requests to a Veil Snowflake listener with Python's
http.client and prints one JSON line per request: {"status": ..., "body":
<the response body as text>}.

Reads a plan from stdin: {"host", "port", "requests": [{"method", "path",
"headers": {...}, "body": <text> | null, "gzip": bool, "repeat": <n>,
"save_token": "name", "save_chunk": "name"}]}. "{name.chunk}" and
"{name.chunkkey}" are the first chunk's path and key of a saved result. "{name}" in a path or header value is replaced by a
token saved from an earlier login response (data.token), "{name.master}" by
its master token.
"""

import gzip
import http.client
import json
import sys


def main():
    plan = json.load(sys.stdin)
    tokens = {}
    chunks = {}
    for req in plan["requests"]:
        def fill(s):
            for name, (path, key) in chunks.items():
                s = s.replace("{" + name + ".chunk}", path).replace("{" + name + ".chunkkey}", key)
            for name, (tok, master) in tokens.items():
                s = s.replace("{" + name + ".master}", master).replace("{" + name + "}", tok)
            return s

        body = req.get("body")
        if body is not None:
            body = fill(body * req.get("repeat", 1)).encode("utf-8")
            if req.get("gzip"):
                body = gzip.compress(body)
        if req.get("raw_body") is not None:
            body = bytes.fromhex(req["raw_body"])
        headers = {k: fill(v) for k, v in (req.get("headers") or {}).items()}
        if req.get("gzip"):
            headers["Content-Encoding"] = "gzip"
        conn = http.client.HTTPConnection(plan["host"], plan["port"], timeout=60)
        try:
            conn.request(req["method"], fill(req["path"]), body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", errors="replace")
            out = {"status": resp.status, "body": text}
        except Exception as e:  # a dropped connection is a failure the test sees
            out = {"status": 0, "body": "", "error": repr(e)}
        finally:
            conn.close()
        if req.get("save_token") and out["status"] == 200:
            data = json.loads(out["body"]).get("data") or {}
            tokens[req["save_token"]] = (data.get("token", ""), data.get("masterToken", ""))
        if req.get("save_chunk") and out["status"] == 200:
            data = json.loads(out["body"]).get("data") or {}
            first = (data.get("chunks") or [{}])[0].get("url", "")
            path = "/" + first.split("/", 3)[3] if first.count("/") >= 3 else ""
            key = next(iter((data.get("chunkHeaders") or {}).values()), "")
            chunks[req["save_chunk"]] = (path, key)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
