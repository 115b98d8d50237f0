//! Glue between the wasi:http runtime and [`crate::endpoint`]: reads the
//! request within size limits, hands it over, writes the reply. Nothing here
//! may panic on request data.

use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, Method, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

use crate::endpoint::{self, Reply, RequestParts};
use crate::{MAX_BODY_BYTES, MAX_URI_BYTES, logging, storage};

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    logging::init();
    let reply = match read_request(req).await {
        Ok(parts) => endpoint::respond(&parts, &storage::Storage::from_env()),
        Err(reply) => reply,
    };
    send(out, reply).await;
}

/// Reads method, target, headers and (bounded) body; oversize requests are
/// answered right away.
async fn read_request(req: IncomingRequest) -> Result<RequestParts, Reply> {
    let method = match req.method() {
        Method::Get => "GET".to_string(),
        Method::Post => "POST".to_string(),
        Method::Head => "HEAD".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Patch => "PATCH".to_string(),
        Method::Options => "OPTIONS".to_string(),
        Method::Connect => "CONNECT".to_string(),
        Method::Trace => "TRACE".to_string(),
        Method::Other(other) => other.chars().take(32).collect(),
    };
    let target = req.path_with_query().unwrap_or_else(|| "/".to_string());
    if target.len() > MAX_URI_BYTES {
        tracing::warn!(bytes = target.len(), "request refused: URI too long");
        return Err(Reply::text(414, "badagent"));
    }
    let headers = req.headers().entries();
    let mut body = Vec::new();
    if method == "POST" {
        // The body is consumed exactly once, here.
        let mut stream = Box::pin(req.into_body_stream());
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    if body.len() + bytes.len() > MAX_BODY_BYTES {
                        tracing::warn!("request refused: body larger than {MAX_BODY_BYTES} bytes");
                        return Err(Reply::text(413, "badagent"));
                    }
                    body.extend_from_slice(&bytes);
                }
                Err(_) => return Err(Reply::text(400, "badagent")),
            }
        }
    }
    Ok(RequestParts {
        method,
        target,
        headers,
        body,
    })
}

async fn send(out: ResponseOutparam, reply: Reply) {
    let body = reply.body.into_bytes();
    let mut headers: Vec<(String, Vec<u8>)> = reply
        .headers
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    let fields = match Fields::from_list(&headers) {
        Ok(f) => f,
        Err(_) => Fields::new(),
    };
    let response = OutgoingResponse::new(fields);
    if response.set_status_code(reply.status).is_err() {
        let _ = response.set_status_code(500);
    }
    if let Err(e) = out.set_with_body(response, body).await {
        tracing::error!("could not send the response: {e}");
    }
}
