"""A canned LSP server over stdio for checking the Neovim plugin's plumbing (commands, rendering,
inline completion display and accept) without the real pith; tests/editors.rs runs e2e.lua
against it as well as against the real binary."""
import json
import sys

CAPABILITIES = {
    "textDocumentSync": 1,
    "hoverProvider": True,
    "codeActionProvider": {"resolveProvider": True},
    "inlineCompletionProvider": True,
    "executeCommandProvider": {
        "commands": ["pith.ask", "pith.explain", "pith.status", "pith.memory.list", "pith.memory.clear",
                     "pith.completion.accepted"]
    },
}

RESULTS = {
    "textDocument/hover": {
        "contents": {"kind": "markdown", "value": "```python\ndef area(shape) -> float\n```\n\ndefined in shapes.py:19"}
    },
    "textDocument/codeAction": [{"title": "pith: explain this function"}, {"title": "pith: write a docstring"}],
    "textDocument/inlineCompletion": {"items": [{
        "insertText": "return sum(area(shape) for shape in shapes)",
        "command": {"title": "remember", "command": "pith.completion.accepted",
                    "arguments": ["", {"line": 0, "character": 0}, "return sum(area(shape) for shape in shapes)"]},
    }]},
    "pith/context": {
        "snippets": [
            {"uri": "file:///shapes.py", "path": "shapes.py", "startLine": 18, "endLine": 22,
             "text": "def area(shape) -> float:", "reason": "called here", "score": 0.9}
        ]
    },
    "shutdown": None,
}

COMMANDS = {
    "pith.status": {"model": {"path": "fake.gguf", "loaded": True}, "index": {"state": "ready", "files": 2, "symbols": 7}},
    "pith.ask": {"answer": "describe returns a line naming the shape.", "citations": [{"path": "report.py", "line": 5}]},
    "pith.explain": "It adds up the areas.",
    "pith.memory.list": [],
    "pith.memory.clear": None,
}


def read_message():
    length = None
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return json.loads(sys.stdin.buffer.read(length))


def send(message):
    body = json.dumps(message).encode()
    sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    sys.stdout.buffer.flush()


def main():
    while True:
        message = read_message()
        if message is None or message.get("method") == "exit":
            return
        if "id" not in message or "method" not in message:
            continue
        method = message["method"]
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": message["id"], "result": {"capabilities": CAPABILITIES}})
        elif method == "workspace/executeCommand":
            command = message["params"]["command"]
            if command == "pith.completion.accepted":
                # Like pith: an accepted completion becomes a memory.
                COMMANDS["pith.memory.list"] = {"memories": [{"kind": "completion", "answer": message["params"]["arguments"][2]}]}
            send({"jsonrpc": "2.0", "id": message["id"], "result": COMMANDS.get(command)})
        elif method in RESULTS:
            send({"jsonrpc": "2.0", "id": message["id"], "result": RESULTS[method]})
        else:
            send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "unknown " + method}})


main()
