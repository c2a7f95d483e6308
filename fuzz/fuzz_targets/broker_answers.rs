//! What a Pact Broker (or a server posing as one) answers: the exchange's interpretation of any
//! status, content type and body; can-i-deploy matrices through the gate's classification; the
//! HAL index, environment lists and deployed versions. Never a panic; a classification that
//! lets a rollout through only on `deployable: true`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use tollgate::gates::broker::client::{interpret, parse_deployed_versions, parse_environments};
use tollgate::gates::broker::{classify, AnswerKind, Deployable, MatrixAnswer};

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(100 + code % 500).unwrap_or(StatusCode::OK)
}

/// Headers chosen by one byte: the content type, and a Retry-After of any kind.
fn header_map(choice: u8) -> HeaderMap {
    let mut h = HeaderMap::new();
    let types = ["application/hal+json", "text/html", "application/json", ""];
    if let Ok(v) = HeaderValue::from_str(types[usize::from(choice & 3)]) {
        h.insert(CONTENT_TYPE, v);
    }
    let afters = ["", "5", "999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "-1"];
    let after = afters[usize::from((choice >> 2) & 7) % afters.len()];
    if let (false, Ok(v)) = (after.is_empty(), HeaderValue::from_str(after)) {
        h.insert(RETRY_AFTER, v);
    }
    h
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (head, body) = data.split_at(3);
    let code = status(u16::from_le_bytes([head[0], head[1]]));
    let headers = header_map(head[2]);
    let _ = interpret(code, &headers, body, head[2] & 0x80 != 0, 1 << 20, true, "http://b/");
    if let Ok(answer) = serde_json::from_slice::<MatrixAnswer>(body) {
        let deployable = answer.deployable();
        let classified = classify(&Ok(answer));
        if classified.kind == AnswerKind::Deployable {
            assert!(matches!(deployable, Some(Deployable::Yes)), "{classified:?}");
        }
    }
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let _ = parse_environments(&v);
        let _ = parse_deployed_versions(&v);
    }
});
