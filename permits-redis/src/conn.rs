//! The user's connection behind one object-safe face, and script calls with
//! a timeout and the NOSCRIPT reload.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::{Cmd, ErrorKind, RedisError, RetryMethod, ServerErrorKind, Value};

use crate::time::timeout;
use crate::Error;

/// Any redis-rs async connection that can be cloned to issue concurrent
/// calls: `MultiplexedConnection`, `ConnectionManager`, a cluster connection.
/// Erased so `GlobalSemaphore` has no type parameter.
pub(crate) trait Connection: Send + Sync + 'static {
    fn query(&self, cmd: Cmd) -> BoxFuture<'static, Result<Value, RedisError>>;
}

impl<C> Connection for C
where
    C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
{
    fn query(&self, cmd: Cmd) -> BoxFuture<'static, Result<Value, RedisError>> {
        let mut conn = self.clone();
        // A server error comes back as `Ok(Value::ServerError)`: make it an `Err`.
        Box::pin(async move { conn.req_packed_command(&cmd).await?.extract_error() })
    }
}

/// A failed call: worth retrying (connection trouble, a timeout, a server
/// that is loading or failing over), or not.
#[derive(Debug)]
pub(crate) enum CallError {
    Retry,
    Fatal(Error),
}

/// One Lua script, run with EVALSHA; a server that does not know it (a
/// restart, `SCRIPT FLUSH`) gets it with SCRIPT LOAD and the call is sent
/// again. Safe because every script is idempotent for its arguments.
#[derive(Debug)]
pub(crate) struct Script {
    code: &'static str,
    hash: String,
}

impl Script {
    pub(crate) fn new(code: &'static str) -> Self {
        Script {
            code,
            hash: redis::Script::new(code).get_hash().to_owned(),
        }
    }

    pub(crate) async fn call(
        &self,
        conn: &dyn Connection,
        keys: &[&[u8]],
        args: &[&[u8]],
        limit: u64,
        within: Duration,
    ) -> Result<Value, CallError> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.hash).arg(keys.len()).arg(keys).arg(args);
        let first = timeout(within, conn.query(cmd.clone())).await;
        let result = match first {
            Some(Err(e)) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let mut load = redis::cmd("SCRIPT");
                load.arg("LOAD").arg(self.code);
                match timeout(within, conn.query(load)).await {
                    Some(Ok(_)) => timeout(within, conn.query(cmd)).await,
                    Some(Err(e)) => Some(Err(e)),
                    None => None,
                }
            }
            other => other,
        };
        match result {
            None => Err(CallError::Retry),
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(classify(e, limit)),
        }
    }
}

fn classify(e: RedisError, limit: u64) -> CallError {
    if e.code() == Some("PERMITS_LIMIT_MISMATCH") {
        let stored = e.detail().and_then(|d| d.trim().parse().ok()).unwrap_or(0);
        return CallError::Fatal(Error::LimitMismatch {
            stored,
            requested: limit,
        });
    }
    let retry = e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || !matches!(e.retry_method(), RetryMethod::NoRetry);
    if retry {
        CallError::Retry
    } else {
        CallError::Fatal(Error::Redis(e))
    }
}

/// An integer out of a script reply.
pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// A reply that is not what the script returns (another program wrote to
/// these keys, or a proxy mangled the reply).
pub(crate) fn unexpected(v: &Value) -> Error {
    Error::Redis(RedisError::from((
        ErrorKind::UnexpectedReturnType,
        "unexpected script reply",
        format!("{v:?}"),
    )))
}
