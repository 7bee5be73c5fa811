//! A guard in front of tower-lsp's reader: it re-frames what the client sends and replaces
//! anything that is not a JSON-RPC message.
//!
//! tower-lsp stops reading for good after one undecodable message (bad JSON, invalid UTF-8, a
//! body that is not a request or response, a header block without `Content-Length`), which
//! would take the whole server down. Here, garbage between frames is skipped, and a malformed
//! body becomes a request for `pith/malformedMessage` with a null id, which the server answers
//! with the spec's parse error (`-32700`, id null).

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tower_lsp_server::jsonrpc::{Request, Response};

/// The method a malformed message is turned into.
pub const MALFORMED_METHOD: &str = "pith/malformedMessage";

/// The method a `$/` request is turned into.
pub const UNSUPPORTED_METHOD: &str = "pith/unsupportedMethod";

/// No LSP message is this large; a bigger length is a corrupt header.
const MAX_BODY_BYTES: usize = 512 << 20;

/// Copies framed messages from `input` to `output` until `input` ends, repairing as it goes.
pub async fn sanitize(input: impl AsyncRead + Unpin, mut output: impl AsyncWrite + Unpin) {
    let mut reader = BufReader::new(input);
    loop {
        let body = match read_frame(&mut reader).await {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(error) => {
                tracing::error!("reading stdin failed: {error}");
                break;
            }
        };
        let body = repair(body);
        let header = format!("Content-Length: {}\r\n\r\n", body.len());
        let written = async {
            output.write_all(header.as_bytes()).await?;
            output.write_all(&body).await?;
            output.flush().await
        };
        if written.await.is_err() {
            break;
        }
    }
    let _ = output.shutdown().await;
}

/// The body of the next frame; None at the end of input. Header blocks without a usable
/// `Content-Length` are skipped.
async fn read_frame(
    reader: &mut (impl AsyncBufReadExt + Unpin),
) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        let mut length = None;
        let mut header_lines = 0;
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                return Ok(None);
            }
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            if line.is_empty() {
                if header_lines > 0 {
                    break;
                }
                continue;
            }
            header_lines += 1;
            if let Some((name, value)) = line.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        match length {
            Some(length) if length <= MAX_BODY_BYTES => {
                let mut body = vec![0; length];
                reader.read_exact(&mut body).await?;
                return Ok(Some(body));
            }
            _ => tracing::warn!("skipping a header block without a valid Content-Length"),
        }
    }
}

/// The body itself if tower-lsp can decode it, else a `pith/malformedMessage` request. A
/// `$/` request (with an id) becomes a `pith/unsupportedMethod` request: tower-lsp would drop
/// its answer, and the spec wants a MethodNotFound error.
fn repair(body: Vec<u8>) -> Vec<u8> {
    if let Ok(request) = serde_json::from_slice::<Request>(&body) {
        if let Some(id) = request.id().filter(|_| request.method().starts_with("$/")) {
            return json!({"jsonrpc": "2.0", "id": id, "method": UNSUPPORTED_METHOD,
                          "params": {"method": request.method()}})
            .to_string()
            .into_bytes();
        }
        return body;
    }
    if serde_json::from_slice::<Response>(&body).is_ok() {
        return body;
    }
    let reason = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => "not a JSON-RPC 2.0 message".to_string(),
        Err(error) => format!("invalid JSON: {error}"),
    };
    tracing::warn!("malformed message from the client: {reason}");
    json!({"jsonrpc": "2.0", "id": null, "method": MALFORMED_METHOD, "params": {"reason": reason}})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    async fn check(input: &[u8], expect: Expect) {
        let mut output = Vec::new();
        super::sanitize(input, &mut output).await;
        // Carriage returns shown as `\r` so the snapshot survives editors and formatters.
        expect.assert_eq(&String::from_utf8_lossy(&output).replace('\r', "\\r"));
    }

    #[tokio::test]
    async fn repairs_and_reframes() {
        check(
            b"Content-Length: 5\r\n\r\n{\"a\":garbage\r\n\r\nContent-Length: 40\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"initialized\"}\nContent-Length: 3\n\n\xff\xfe!Content-Length: 99",
            expect![[r#"
                Content-Length: 141\r
                \r
                {"id":null,"jsonrpc":"2.0","method":"pith/malformedMessage","params":{"reason":"invalid JSON: EOF while parsing a value at line 1 column 5"}}Content-Length: 40\r
                \r
                {"jsonrpc":"2.0","method":"initialized"}Content-Length: 130\r
                \r
                {"id":null,"jsonrpc":"2.0","method":"pith/malformedMessage","params":{"reason":"invalid JSON: expected value at line 1 column 1"}}"#]],
        )
        .await;
    }
}
