//! The error vocabulary table (provider_core::error::vocabulary) for AWS: each row is
//! an answer as EC2 or ELBv2 sends it (status, headers, body), served by a replay
//! server on 127.0.0.1 to the provider's own SDK clients ([`AwsProvider::connect`]) and
//! classified by [`AwsError::from_sdk`] and [`AwsError::classify`], as every call of
//! this crate is.
//!
//! Where the answers come from:
//! - "moto": captured from the moto server this repository tests against, byte for byte
//!   (moto produces not-found, in-use, duplicate and missing-parameter answers);
//! - "api-ref": the EC2 API reference ("Error codes for the Amazon EC2 API") and the
//!   ELBv2 API reference, in the wire format moto showed, for what moto never answers
//!   (throttling, quotas, credentials, permissions, busy states, 5xx). A 429 with
//!   `Retry-After` is what an AWS-compatible endpoint or a proxy in front of one sends:
//!   AWS documents no such header, and the provider keeps it when it comes.
//!
//! The replay server is used because moto cannot produce those faults; the answers it
//! can produce are replayed too, so that the table does not depend on moto's state.

use std::time::Duration;

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use provider_core::error::replay::{Answer, Replay};
use provider_core::error::vocabulary::{check_table, Row, Situation, TableMismatch};
use provider_core::{Error, Operation};

use crate::{AwsBuilder, AwsError, AwsProvider};

#[derive(Debug, Clone, Copy)]
enum Api {
    Ec2,
    Elb,
}

/// `(source, situation, api, status, Retry-After, code, message)`; the body is built in
/// the API's wire format.
type Recorded = (
    &'static str,
    Situation,
    Api,
    u16,
    Option<&'static str>,
    &'static str,
    &'static str,
);

fn ec2_body(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15\"><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>request-id</RequestID></Response>"
    )
}

fn elb_body(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>xrGFWz4APp2OJcGo5XYHOjQDX8B17f6QWW3qTelyZU7zu239ljiG</RequestId></ErrorResponse>"
    )
}

fn recorded() -> Vec<Recorded> {
    use Api::*;
    use Situation as S;
    vec![
        ("moto DescribeInstances, an unknown id", S::NotFound, Ec2, 400, None,
         "InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"),
        ("moto DescribeInstances, id \"bogus\"", S::NotFound, Ec2, 400, None,
         "InvalidInstanceID.NotFound", "The instance ID 'bogus' does not exist"),
        ("moto DescribeVolumes, an unknown id", S::NotFound, Ec2, 400, None,
         "InvalidVolume.NotFound", "The volume '{'vol-0123456789abcdef0'}' does not exist."),
        ("api-ref DescribeInstances, a malformed id", S::NotFound, Ec2, 400, None,
         "InvalidInstanceID.Malformed", "Invalid id: \"bogus\""),
        ("moto DescribeLoadBalancers, an unknown ARN", S::NotFound, Elb, 400, None,
         "LoadBalancerNotFound", "The specified load balancer does not exist."),
        ("api-ref AttachVolume to a volume being created", S::Busy, Ec2, 400, None,
         "IncorrectState", "The volume 'vol-0a1b2c3d4e5f60718' is not 'available'."),
        ("api-ref StopInstances on a pending instance", S::Busy, Ec2, 400, None,
         "IncorrectInstanceState", "The instance 'i-0123456789abcdef0' is not in a state from which it can be stopped."),
        ("moto DeleteVolume, attached", S::InUse, Ec2, 400, None,
         "VolumeInUse", "Volume vol-a02cd7b32f67eb239 is currently attached to i-6207f9984029c6a3f"),
        ("moto DeleteTargetGroup, used by a listener", S::InUse, Elb, 400, None,
         "ResourceInUse", "The target group 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/errvocab-tg/bcdf60303676246a' is currently in use by a listener or a rule"),
        ("api-ref DeleteSecurityGroup, referenced", S::InUse, Ec2, 400, None,
         "DependencyViolation", "resource sg-0123456789abcdef0 has a dependent object"),
        ("moto CreateSecurityGroup, a name that exists", S::AlreadyExists, Ec2, 400, None,
         "InvalidGroup.Duplicate", "The security group 'errvocab-a' already exists"),
        ("moto AuthorizeSecurityGroupIngress, a rule that exists", S::AlreadyExists, Ec2, 400, None,
         "InvalidPermission.Duplicate", "The specified rule already exists"),
        ("api-ref CreateLoadBalancer, a name that exists", S::AlreadyExists, Elb, 400, None,
         "DuplicateLoadBalancerName", "A load balancer with the same name 'plinth-api' exists, but with different settings"),
        ("api-ref RunInstances over the instance limit", S::QuotaExceeded, Ec2, 400, None,
         "InstanceLimitExceeded", "You have requested more instances (21) than your current instance limit of 20 allows for the specified instance type. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."),
        ("api-ref AllocateAddress over the limit", S::QuotaExceeded, Ec2, 400, None,
         "AddressLimitExceeded", "The maximum number of addresses has been reached."),
        ("api-ref CreateLoadBalancer over the quota", S::QuotaExceeded, Elb, 400, None,
         "TooManyLoadBalancers", "The quota for the number of load balancers has been reached"),
        ("api-ref RunInstances, no capacity", S::QuotaExceeded, Ec2, 500, None,
         "InsufficientInstanceCapacity", "We currently do not have sufficient t3.micro capacity in the Availability Zone you requested (us-east-1a)."),
        ("api-ref EC2 request rate exceeded", S::rate_limited(), Ec2, 503, None,
         "RequestLimitExceeded", "Request limit exceeded."),
        ("api-ref ELBv2 request rate exceeded", S::rate_limited(), Elb, 400, None,
         "Throttling", "Rate exceeded"),
        ("an endpoint's 429 with a code the SDK does not know", S::rate_limited(), Ec2, 429, None,
         "EndpointRateExceeded", "Rate exceeded"),
        ("an endpoint's 429 with Retry-After", S::rate_limited_after(Duration::from_secs(3)), Ec2, 429, Some("3"),
         "EndpointRateExceeded", "Rate exceeded"),
        ("api-ref EC2 throttling with Retry-After", S::rate_limited_after(Duration::from_secs(2)), Ec2, 503, Some("2"),
         "RequestLimitExceeded", "Request limit exceeded."),
        ("api-ref EC2 credentials not valid", S::Unauthenticated, Ec2, 401, None,
         "AuthFailure", "AWS was not able to validate the provided access credentials"),
        ("api-ref ELBv2 unknown access key", S::Unauthenticated, Elb, 403, None,
         "InvalidClientTokenId", "The security token included in the request is invalid."),
        ("api-ref EC2 not authorized", S::PermissionDenied, Ec2, 403, None,
         "UnauthorizedOperation", "You are not authorized to perform this operation."),
        ("api-ref ELBv2 not authorized", S::PermissionDenied, Elb, 403, None,
         "AccessDenied", "User: arn:aws:iam::123456789012:user/plinth is not authorized to perform: elasticloadbalancing:DescribeLoadBalancers"),
        ("moto CreateVolume without a size", S::invalid("size/snapshot"), Ec2, 400, None,
         "MissingParameter", "The request must contain the parameter size/snapshot"),
        ("api-ref RunInstances, an unknown instance type", S::invalid("instanceType"), Ec2, 400, None,
         "InvalidParameterValue", "Value (t9.nonsense) for parameter instanceType is invalid. Value is not a valid instance type."),
        ("api-ref CreateLoadBalancer, a bad name", S::invalid("name"), Elb, 400, None,
         "ValidationError", "1 validation error detected: Value '-bad_name-' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9-]+$"),
        ("api-ref CreateLoadBalancer, two subnets of one AZ", S::invalid_unnamed(), Elb, 400, None,
         "InvalidConfigurationRequest", "A load balancer cannot be attached to multiple subnets in the same Availability Zone"),
        ("api-ref RunInstances, groups with interfaces", S::invalid_unnamed(), Ec2, 400, None,
         "InvalidParameterCombination", "Network interfaces and an instance-level security groups may not be specified on the same request"),
        ("api-ref EC2 internal error", S::ServerError, Ec2, 500, None,
         "InternalError", "An internal error has occurred"),
        ("api-ref EC2 overloaded", S::ServerError, Ec2, 503, None,
         "Unavailable", "The server is overloaded and can't handle the request."),
        ("api-ref ELBv2 internal failure", S::ServerError, Elb, 500, None,
         "InternalFailure", "The request processing has failed because of an unknown error, exception or failure."),
        ("a 502 with a code the SDK does not know", S::ServerError, Ec2, 502, None,
         "BadGateway", "Bad Gateway"),
        ("api-ref EC2 request timeout", S::Timeout, Ec2, 503, None,
         "RequestTimeout", "Request timed out"),
    ]
}

/// The provider's SDK clients for `url`: static credentials, no SDK retries (the Retry
/// layer retries, and the table wants one answer per call), a 1 s attempt timeout.
async fn provider_for(url: &str) -> AwsProvider {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDPLINTHTEST",
            "not-a-secret",
            None,
            None,
            "test",
        )))
        .endpoint_url(url)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(1))
                .build(),
        )
        .build();
    let config = AwsBuilder::new()
        .with_region("us-east-1")
        .with_endpoint_url(url)
        .config()
        .clone();
    // No subnets are configured, so connecting sends nothing.
    AwsProvider::connect(&sdk, config)
        .await
        .expect("connecting without subnets sends nothing")
}

/// One call of `api` against `url`, classified as the provider classifies it.
async fn classified(api: Api, url: &str) -> Error {
    let p = provider_for(url).await;
    let got = match api {
        Api::Ec2 => p
            .ec2_client()
            .describe_instances()
            .instance_ids("i-0123456789abcdef0")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                AwsError::from_sdk(e)
                    .classify(Operation::GetInstance, "instance i-0123456789abcdef0")
            }),
        Api::Elb => p
            .elb_client()
            .describe_load_balancers()
            .names("plinth-api")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                AwsError::from_sdk(e)
                    .classify(Operation::GetLoadBalancer, "load balancer plinth-api")
            }),
    };
    match got {
        Err(e) => e,
        Ok(()) => Error::api(Operation::GetInstance, None, "test", "the call succeeded"),
    }
}

#[tokio::test]
async fn every_situation_is_classified_as_the_vocabulary_says() -> Result<(), TableMismatch> {
    let mut rows = Vec::new();
    for (source, situation, api, status, retry_after, code, message) in recorded() {
        let body = match api {
            Api::Ec2 => ec2_body(code, message),
            Api::Elb => elb_body(code, message),
        };
        let mut answer = Answer::new(status, body).header("Content-Type", "text/xml");
        if let Some(v) = retry_after {
            answer = answer.header("Retry-After", v);
        }
        let replay = Replay::start(answer).await.expect("binding 127.0.0.1");
        let got = classified(api, &replay.url()).await;
        assert_eq!(replay.requests(), 1, "{source}: one request, no SDK retry");
        rows.push(Row::new(
            format!("{status} {code} ({source})"),
            situation,
            got,
        ));
    }

    // No answer within the attempt timeout.
    let silent = Replay::silent().await.expect("binding 127.0.0.1");
    let got = classified(Api::Ec2, &silent.url()).await;
    rows.push(Row::new("no answer within 1 s", Situation::Timeout, got));

    // Nothing listens on port 1.
    let got = classified(Api::Ec2, "http://127.0.0.1:1").await;
    rows.push(Row::new(
        "connection refused (port 1)",
        Situation::Unreachable,
        got,
    ));

    check_table(&rows, &[])
}
