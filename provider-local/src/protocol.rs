//! What the client and the daemon say to each other over the state dir's unix socket:
//! one JSON [`Request`] line, one JSON [`Response`] line, per connection.

use std::time::Duration;

use provider_core::{
    Error, FloatingIpSpec, IngressRule, InstanceSpec, LoadBalancerSpec, MemberSpec, Operation,
    ResourceKind, SecurityGroupSpec, TagFilter, Tags, VolumeSpec,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Largest line either side accepts (lists are paged, so answers stay small).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Where a list page starts: after the item with this id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageToken(pub Option<String>);

/// One page of a list answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Token of the next page, if there is one.
    pub next: Option<String>,
}

/// One call to the daemon.
#[allow(missing_docs)] // the variants mirror the `Provider` methods one to one
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Is the daemon up (answers its pid).
    Ping,
    /// Stop the daemon; instance processes keep running and are re-adopted later.
    Shutdown,
    /// Delete every resource, then stop the daemon.
    DestroyAll,
    ListAvailabilityZones,
    UpdateTags {
        kind: ResourceKind,
        id: String,
        set: Tags,
        remove: Vec<String>,
    },
    CreateSecurityGroup {
        spec: SecurityGroupSpec,
    },
    GetSecurityGroup {
        id: String,
    },
    ListSecurityGroups {
        filter: TagFilter,
        after: Option<String>,
    },
    AddSecurityGroupRule {
        group_id: String,
        rule: IngressRule,
    },
    RemoveSecurityGroupRule {
        group_id: String,
        rule: IngressRule,
    },
    DeleteSecurityGroup {
        id: String,
    },
    AllocateFloatingIp {
        spec: FloatingIpSpec,
    },
    GetFloatingIp {
        id: String,
    },
    ListFloatingIps {
        filter: TagFilter,
        after: Option<String>,
    },
    AssociateFloatingIp {
        id: String,
        instance_id: String,
    },
    DisassociateFloatingIp {
        id: String,
    },
    ReleaseFloatingIp {
        id: String,
    },
    CreateVolume {
        spec: VolumeSpec,
    },
    GetVolume {
        id: String,
    },
    ListVolumes {
        filter: TagFilter,
        after: Option<String>,
    },
    AttachVolume {
        volume_id: String,
        instance_id: String,
    },
    DetachVolume {
        volume_id: String,
    },
    DeleteVolume {
        id: String,
    },
    CreateInstance {
        spec: InstanceSpec,
    },
    GetInstance {
        id: String,
    },
    ListInstances {
        filter: TagFilter,
        after: Option<String>,
    },
    DeleteInstance {
        id: String,
    },
    CreateLoadBalancer {
        spec: LoadBalancerSpec,
    },
    GetLoadBalancer {
        id: String,
    },
    ListLoadBalancers {
        filter: TagFilter,
        after: Option<String>,
    },
    AddLoadBalancerMember {
        lb_id: String,
        listener_port: u16,
        member: MemberSpec,
    },
    RemoveLoadBalancerMember {
        lb_id: String,
        listener_port: u16,
        member: MemberSpec,
    },
    DeleteLoadBalancer {
        id: String,
    },
}

/// The daemon's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Success, with the operation's value.
    Ok(serde_json::Value),
    /// Failure, with the provider error.
    Err(WireError),
}

/// [`provider_core::Error`] as it crosses the socket (the core enum is not serde).
#[allow(missing_docs)] // fields mirror provider_core::Error
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireError {
    NotFound {
        operation: Operation,
        resource: String,
    },
    AlreadyExists {
        operation: Operation,
        resource: String,
    },
    Conflict {
        operation: Operation,
        resource: String,
        message: String,
    },
    QuotaExceeded {
        operation: Operation,
        message: String,
    },
    Throttled {
        operation: Operation,
        retry_after: Option<Duration>,
    },
    Unauthorized {
        operation: Operation,
        message: String,
    },
    Forbidden {
        operation: Operation,
        message: String,
    },
    InvalidInput {
        operation: Operation,
        field: String,
        message: String,
    },
    Unsupported {
        operation: Operation,
        message: String,
    },
    Timeout {
        operation: Operation,
        resource: String,
        wanted: String,
        last_state: String,
        waited: Duration,
    },
    Transient {
        operation: Operation,
        message: String,
    },
    Api {
        operation: Operation,
        status: Option<u16>,
        code: String,
        message: String,
    },
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> Self {
        match e.clone() {
            Error::NotFound {
                operation,
                resource,
            } => WireError::NotFound {
                operation,
                resource,
            },
            Error::AlreadyExists {
                operation,
                resource,
            } => WireError::AlreadyExists {
                operation,
                resource,
            },
            Error::Conflict {
                operation,
                resource,
                message,
            } => WireError::Conflict {
                operation,
                resource,
                message,
            },
            Error::QuotaExceeded { operation, message } => {
                WireError::QuotaExceeded { operation, message }
            }
            Error::Throttled {
                operation,
                retry_after,
            } => WireError::Throttled {
                operation,
                retry_after,
            },
            Error::Unauthorized { operation, message } => {
                WireError::Unauthorized { operation, message }
            }
            Error::Forbidden { operation, message } => WireError::Forbidden { operation, message },
            Error::InvalidInput {
                operation,
                field,
                message,
            } => WireError::InvalidInput {
                operation,
                field,
                message,
            },
            Error::Unsupported { operation, message } => {
                WireError::Unsupported { operation, message }
            }
            Error::Timeout {
                operation,
                resource,
                wanted,
                last_state,
                waited,
            } => WireError::Timeout {
                operation,
                resource,
                wanted,
                last_state,
                waited,
            },
            Error::Transient { operation, message } => WireError::Transient { operation, message },
            Error::Api {
                operation,
                status,
                code,
                message,
            } => WireError::Api {
                operation,
                status,
                code,
                message,
            },
            // A kind added to the core later travels as a generic API error.
            other => WireError::Api {
                operation: other
                    .operation()
                    .unwrap_or(Operation::ListAvailabilityZones),
                status: None,
                code: format!("{:?}", other.kind()),
                message: other.to_string(),
            },
        }
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        match e {
            WireError::NotFound {
                operation,
                resource,
            } => Error::NotFound {
                operation,
                resource,
            },
            WireError::AlreadyExists {
                operation,
                resource,
            } => Error::AlreadyExists {
                operation,
                resource,
            },
            WireError::Conflict {
                operation,
                resource,
                message,
            } => Error::Conflict {
                operation,
                resource,
                message,
            },
            WireError::QuotaExceeded { operation, message } => {
                Error::QuotaExceeded { operation, message }
            }
            WireError::Throttled {
                operation,
                retry_after,
            } => Error::Throttled {
                operation,
                retry_after,
            },
            WireError::Unauthorized { operation, message } => {
                Error::Unauthorized { operation, message }
            }
            WireError::Forbidden { operation, message } => Error::Forbidden { operation, message },
            WireError::InvalidInput {
                operation,
                field,
                message,
            } => Error::InvalidInput {
                operation,
                field,
                message,
            },
            WireError::Unsupported { operation, message } => {
                Error::Unsupported { operation, message }
            }
            WireError::Timeout {
                operation,
                resource,
                wanted,
                last_state,
                waited,
            } => Error::Timeout {
                operation,
                resource,
                wanted,
                last_state,
                waited,
            },
            WireError::Transient { operation, message } => Error::Transient { operation, message },
            WireError::Api {
                operation,
                status,
                code,
                message,
            } => Error::Api {
                operation,
                status,
                code,
                message,
            },
        }
    }
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

    #[test]
    fn errors_round_trip() {
        let e = Error::conflict(Operation::DeleteVolume, "volume v", "attached");
        let w = WireError::from(&e);
        let json = serde_json::to_string(&w).unwrap();
        let back: WireError = serde_json::from_str(&json).unwrap();
        assert_eq!(Error::from(back), e);
    }
}
