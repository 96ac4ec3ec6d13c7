//! The error vocabulary table (provider_core::error::vocabulary) for OpenStack: each
//! row is an answer as the service sends it (status, `Retry-After`, body), fed through
//! [`from_response`], the function every call of this crate goes through.
//!
//! Where the answers come from:
//! - "emulator": captured from this repository's OpenStack services (Keystone, Nova
//!   with the fake driver, Neutron, Cinder, Octavia with noop drivers), in a scratch
//!   project with quotas lowered for the quota rows, bodies copied byte for byte.
//! - "api-ref": the services' API references and source (fault formats of
//!   `nova/api/openstack/wsgi.py`, `octavia/common/exceptions.py`), for answers the
//!   services here do not produce on demand (rate limits, a 5xx, Nova's task_state
//!   409, Octavia's immutable 409).

use http::{HeaderMap, HeaderValue};
use provider_core::error::vocabulary::{check_table, Row, Situation, TableMismatch};
use provider_core::Operation;

use super::*;

/// `(source and service, situation, status, Retry-After, body)`.
type Answer = (
    &'static str,
    Situation,
    u16,
    Option<&'static str>,
    &'static str,
);

fn answers() -> Vec<Answer> {
    use Situation as S;
    vec![
        ("emulator nova GET /servers/{missing}", S::NotFound, 404, None,
         r#"{"itemNotFound": {"code": 404, "message": "Instance eec803b9-c61d-4c14-8797-9a808007056b could not be found."}}"#),
        ("emulator neutron GET /security-groups/{missing}", S::NotFound, 404, None,
         r#"{"NeutronError": {"type": "SecurityGroupNotFound", "message": "Security group eec803b9-c61d-4c14-8797-9a808007056b does not exist", "detail": ""}}"#),
        ("emulator neutron GET /security-groups/not-a-uuid", S::NotFound, 404, None,
         r#"{"NeutronError": {"type": "SecurityGroupNotFound", "message": "Security group not-a-uuid does not exist", "detail": ""}}"#),
        ("emulator cinder GET /volumes/{missing}", S::NotFound, 404, None,
         r#"{"itemNotFound": {"code": 404, "message": "Volume eec803b9-c61d-4c14-8797-9a808007056b could not be found."}}"#),
        ("emulator octavia GET /lbaas/loadbalancers/{missing}", S::NotFound, 404, None,
         r#"{"faultcode": "Client", "faultstring": "Load Balancer eec803b9-c61d-4c14-8797-9a808007056b not found.", "debuginfo": null}"#),
        ("emulator octavia PUT on a PENDING_CREATE load balancer", S::Busy, 409, None,
         r#"{"faultcode": "Client", "faultstring": "Invalid state PENDING_CREATE of loadbalancer resource e2245600-0c67-4d33-9fc9-ccfa1ccae36f", "debuginfo": null}"#),
        ("api-ref octavia ImmutableObject", S::Busy, 409, None,
         r#"{"faultcode": "Client", "faultstring": "Load Balancer 8d2f0a4c-52d5-4c71-a1ba-6bd8b1cf5bb4 is immutable and cannot be updated.", "debuginfo": null}"#),
        ("api-ref nova InstanceInvalidState during a task", S::Busy, 409, None,
         r#"{"conflictingRequest": {"code": 409, "message": "Cannot 'attach_volume' instance 0e44cc9c-e052-415d-afbf-469b0d384170 while it is in task_state spawning"}}"#),
        ("emulator neutron DELETE a group a port uses", S::InUse, 409, None,
         r#"{"NeutronError": {"type": "SecurityGroupInUse", "message": "Security Group b18704c7-9d45-4b0d-8247-93bb13058c97 in use.", "detail": ""}}"#),
        ("emulator neutron POST a rule that exists", S::AlreadyExists, 409, None,
         r#"{"NeutronError": {"type": "SecurityGroupRuleExists", "message": "Security group rule already exists. Rule id is 86f9ec61-9e86-4477-9860-81057bee706e.", "detail": ""}}"#),
        ("emulator neutron POST a rule over quota", S::QuotaExceeded, 409, None,
         r#"{"NeutronError": {"type": "OverQuota", "message": "Quota exceeded for resources: ['security_group_rule'].", "detail": ""}}"#),
        ("emulator nova POST /servers over quota", S::QuotaExceeded, 403, None,
         r#"{"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, but already used 0 of 0 instances"}}"#),
        ("emulator cinder POST /volumes over quota", S::QuotaExceeded, 413, None,
         r#"{"overLimit": {"code": 413, "message": "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 2G, quota is 1G and 0G has been consumed.", "retryAfter": "0"}}"#),
        ("api-ref nova rate limit (413 overLimit, Retry-After)", S::rate_limited_after(Duration::from_secs(2)), 413, Some("2"),
         r#"{"overLimit": {"code": 413, "message": "This request was rate-limited.", "retryAfter": "2", "details": "Only 10 POST request(s) can be made to * every minute."}}"#),
        ("api-ref 429 with Retry-After (a rate-limiting proxy or middleware)", S::rate_limited_after(Duration::from_secs(30)), 429, Some("30"),
         "<html><body><h1>429 Too Many Requests</h1>You have sent too many requests in a given amount of time.</body></html>"),
        ("api-ref 429 without Retry-After", S::rate_limited(), 429, None,
         r#"{"overLimit": {"code": 429, "message": "This request was rate-limited."}}"#),
        ("emulator keystonemiddleware, a bad token", S::Unauthenticated, 401, None,
         r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#),
        ("emulator keystone POST /auth/tokens, a wrong password", S::Unauthenticated, 401, None,
         "{\"error\":{\"code\":401,\"message\":\"The request you have made requires authentication.\",\"title\":\"Unauthorized\"}}\n"),
        ("emulator nova GET /os-hypervisors as a member", S::PermissionDenied, 403, None,
         r#"{"forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:os-hypervisors:list to be performed."}}"#),
        ("emulator neutron POST a provider network as a member", S::PermissionDenied, 403, None,
         r#"{"NeutronError": {"type": "PolicyNotAuthorized", "message": "((rule:create_network and rule:create_network:provider:network_type) and rule:create_network:provider:physical_network) is disallowed by policy", "detail": ""}}"#),
        ("emulator cinder POST /volumes size \"abc\"", S::invalid("size"), 400, None,
         r#"{"badRequest": {"code": 400, "message": "Invalid input for field/attribute size. Value: abc. 'abc' does not match '^[0-9]+$'"}}"#),
        ("emulator nova POST /servers flavorRef \"\"", S::invalid("flavorRef"), 400, None,
         r#"{"badRequest": {"code": 400, "message": "Invalid input for field/attribute flavorRef. Value: . '' should be non-empty"}}"#),
        ("emulator neutron POST a rule with direction \"sideways\"", S::invalid("direction"), 400, None,
         r#"{"NeutronError": {"type": "HTTPBadRequest", "message": "Invalid input for direction. Reason: sideways is not in valid_values.", "detail": ""}}"#),
        ("emulator octavia POST a load balancer, vip_subnet_id not a UUID", S::invalid("vip_subnet_id"), 400, None,
         r#"{"faultcode": "Client", "faultstring": "Invalid input for field/attribute vip_subnet_id. Value: 'not-a-uuid'. Value should be UUID format", "debuginfo": null}"#),
        ("emulator neutron POST a rule with port_range_min > max", S::invalid_unnamed(), 400, None,
         r#"{"NeutronError": {"type": "SecurityGroupInvalidPortRange", "message": "For TCP/UDP protocols, port_range_min must be <= port_range_max", "detail": ""}}"#),
        ("emulator neutron POST a rule with CIDR 300.1.1.1/99", S::invalid_unnamed(), 400, None,
         r#"{"NeutronError": {"type": "InvalidCIDR", "message": "Invalid CIDR 300.1.1.1/99 given as IP prefix.", "detail": ""}}"#),
        ("api-ref nova 500 computeFault", S::ServerError, 500, None,
         r#"{"computeFault": {"code": 500, "message": "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.\n<class 'oslo_db.exception.DBConnectionError'>"}}"#),
        ("api-ref 503 from the API's proxy", S::ServerError, 503, None,
         "<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>"),
        ("api-ref 504 from the API's proxy", S::Timeout, 504, None,
         "<html><body><h1>504 Gateway Time-out</h1>The server didn't respond in time.</body></html>"),
    ]
}

#[tokio::test]
async fn every_situation_is_classified_as_the_vocabulary_says() -> Result<(), TableMismatch> {
    let op = Operation::AddSecurityGroupRule;
    let mut rows: Vec<Row> = answers()
        .into_iter()
        .map(|(answer, situation, status, retry_after, body)| {
            let mut headers = HeaderMap::new();
            if let Some(v) = retry_after {
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static(v));
            }
            let got = from_response(op, status, &headers, body.as_bytes());
            Row::new(format!("{status} {answer}"), situation, got)
        })
        .collect();
    // No answer at all: the session's own failure, through the builder (nothing
    // listens on port 1).
    let unreachable = crate::OpenStackBuilder::new()
        .with_auth_url("http://127.0.0.1:1/v3")
        .with_username("admin")
        .with_password("pw".to_string().into())
        .with_user_domain_name("Default")
        .with_project_name("demo")
        .with_project_domain_name("Default")
        .build()
        .await;
    match unreachable {
        Err(got) => rows.push(Row::new(
            "connection refused (port 1)",
            Situation::Unreachable,
            got,
        )),
        Ok(_) => return Err(TableMismatch(vec!["something answered on port 1".into()])),
    }
    check_table(&rows, &[])
}
