//! What the client and the daemon say to each other over the state dir's unix socket:
//! one JSON [`Request`] line, one JSON [`Response`] line, per connection.

use provider_core::{
    Error, FloatingIpSpec, IngressRule, InstanceSpec, LoadBalancerSpec, MemberSpec, References,
    ResourceKind, SecurityGroupSpec, TagFilter, Tags, VolumeSpec,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Largest line either side accepts (lists are paged, so answers stay small).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// One page of a list answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Token of the next page, if there is one.
    pub next: Option<String>,
}

/// Generates [`Request`] from the contract's table of operations
/// ([`provider_core::for_each_operation!`]): a variant per operation, named after it, with
/// its arguments owned; lists carry the page cursor `after`.
macro_rules! requests {
    (
        core { $($core:tt)* }
        families { $($fam:ident $acc:ident $label:literal { $($ops:tt)* })* }
    ) => {
        requests!(@munch [] $($core)* $($($ops)*)*);
    };
    (@munch [$($done:tt)*]) => {
        /// One call to the daemon: a request about the daemon itself, or one operation of
        /// the contract.
        #[allow(missing_docs)] // an operation's fields are its arguments, named as in the trait
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "op", rename_all = "snake_case")]
        pub enum Request {
            /// Is the daemon up (answers its pid).
            Ping,
            /// Stop the daemon; instance processes keep running and are re-adopted later.
            Shutdown,
            /// Delete every resource, then stop the daemon.
            DestroyAll,
            $($done)*
        }
    };
    (@munch [$($done:tt)*] $v:ident = call $m:ident ($($a:ident : [$($t:tt)*] $(as $o:ty)?),*) -> [$($r:tt)*]; $($rest:tt)*) => {
        requests!(@munch [$($done)*
            #[doc = concat!("`", stringify!($m), "`.")]
            $v { $($a: requests!(@owned [$($t)*] $(as $o)?)),* },
        ] $($rest)*);
    };
    (@munch [$($done:tt)*] $v:ident = paged $m:ident ($($a:ident : [$($t:tt)*] $(as $o:ty)?),*) -> [$($r:tt)*]; $($rest:tt)*) => {
        requests!(@munch [$($done)*
            #[doc = concat!("One page of `", stringify!($m), "`, after the item with id `after`.")]
            $v { $($a: requests!(@owned [$($t)*] $(as $o)?),)* after: Option<String> },
        ] $($rest)*);
    };
    (@owned [$($t:tt)*] as $o:ty) => { $o };
    (@owned [$($t:tt)*]) => { $($t)* };
}

provider_core::for_each_operation!(requests);

/// The daemon's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Success, with the operation's value.
    Ok(serde_json::Value),
    /// Failure, with the provider error.
    Err(Error),
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed before a whole line.
    #[error("connection closed before a complete message")]
    Closed,
    /// The line was not the JSON expected.
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
    /// The line was longer than [`MAX_LINE`].
    #[error("message longer than {MAX_LINE} bytes")]
    TooLong,
}

/// Writes `msg` as one JSON line.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let mut line = serde_json::to_vec(msg)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one JSON line.
pub async fn read_frame<R: AsyncRead + Unpin, T: serde::de::DeserializeOwned>(
    r: &mut BufReader<R>,
) -> Result<T, FrameError> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(FrameError::Closed);
        }
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&buf[..pos]);
            r.consume(pos + 1);
            break;
        }
        let n = buf.len();
        line.extend_from_slice(buf);
        r.consume(n);
        if line.len() > MAX_LINE {
            return Err(FrameError::TooLong);
        }
    }
    Ok(serde_json::from_slice(&line)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_core::Operation;

    #[test]
    fn errors_round_trip() {
        let e = Error::conflict(Operation::DeleteVolume, "volume v", "attached");
        let json = serde_json::to_string(&Response::Err(e.clone())).unwrap();
        let back: Response = serde_json::from_str(&json).unwrap();
        assert!(matches!(back, Response::Err(b) if b == e));
    }
}
