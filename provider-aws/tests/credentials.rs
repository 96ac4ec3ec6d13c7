//! Opening the provider with no credentials anywhere in aws-config's chain is a
//! configuration error that names the settings to fix, before any API call. Its own
//! test binary: it empties the process environment's credential variables.

use provider_aws::AwsBuilder;
use provider_core::ErrorKind;

#[tokio::test]
async fn no_credentials_is_a_config_error_naming_the_settings() {
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        std::env::remove_var(v);
    }
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/plinth-aws-config");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/plinth-aws-credentials",
    );
    // Nothing listens here: the error must come before any request.
    let e = AwsBuilder::new()
        .with_region("us-east-1")
        .with_endpoint_url("http://127.0.0.1:1")
        .build()
        .await
        .expect_err("no credentials anywhere");
    assert_eq!(e.kind(), ErrorKind::Config, "{e:?}");
    let shown = e.to_string();
    assert!(
        shown.contains("AWS credentials") && shown.contains("AWS_ACCESS_KEY_ID"),
        "{shown}"
    );
}
