//! The error vocabulary table (provider_core::error::vocabulary) for vSphere: each row
//! is an answer as vCenter sends it (status, headers, SOAP envelope), served by a replay
//! server on 127.0.0.1 to the provider's own [`Client`], whose first request of a
//! session (`RetrieveServiceContent`) gets it and classifies it as every call does.
//!
//! Where the answers come from:
//! - "vcsim": captured from govmomi's vcsim this repository tests against, byte for
//!   byte (not found, duplicate name, invalid login, invalid argument, and the bare 404
//!   of its file service);
//! - "api-ref": the vSphere Web Services API reference (the fault types and their
//!   fields) in the envelope vcsim showed, and the answers of vCenter's reverse proxy
//!   (a 503 when a service is down, a 429 when an API gateway rate-limits), for what
//!   vcsim does not produce. The replay server exists for those.

use std::time::Duration;

use provider_core::error::replay::{Answer, Replay};
use provider_core::error::vocabulary::{check_table, Row, Situation, TableMismatch};
use provider_core::{Error, Operation};

use crate::client::Client;
use crate::config::VSphereBuilder;

/// A SOAP fault in the envelope vcsim sends.
fn fault(faultstring: &str, detail: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\" xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{faultstring}</faultstring><detail>{detail}</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
}

const XML: &str = "text/xml; charset=utf-8";

/// `(source, situation, answer)`.
fn recorded() -> Vec<(&'static str, Situation, Answer)> {
    use Situation as S;
    let soap = |faultstring: &str, detail: &str| {
        Answer::new(500, fault(faultstring, detail)).header("Content-Type", XML)
    };
    vec![
        ("vcsim RetrievePropertiesEx of vm-99999", S::NotFound,
         soap("The object has already been deleted or has not been completely created",
              "<ManagedObjectNotFoundFault xmlns=\"urn:vim25\" xsi:type=\"ManagedObjectNotFound\"><obj type=\"VirtualMachine\">vm-99999</obj></ManagedObjectNotFoundFault>")),
        ("vcsim PowerOnVM_Task of vm-99999", S::NotFound,
         soap("managed object not found: VirtualMachine:vm-99999",
              "<ManagedObjectNotFoundFault xmlns=\"urn:vim25\" xsi:type=\"ManagedObjectNotFound\"><obj type=\"VirtualMachine\">vm-99999</obj></ManagedObjectNotFoundFault>")),
        ("vcsim bare 404 of its file service", S::NotFound,
         Answer::new(404, "404 page not found\n")
             .header("Content-Type", "text/plain; charset=utf-8")
             .header("X-Content-Type-Options", "nosniff")),
        ("api-ref TaskInProgress", S::Busy,
         soap("The operation is not allowed in the current state.",
              "<TaskInProgressFault xmlns=\"urn:vim25\" xsi:type=\"TaskInProgress\"><obj type=\"VirtualMachine\">vm-42</obj><task type=\"Task\">task-7</task></TaskInProgressFault>")),
        ("api-ref InvalidState", S::Busy,
         soap("The operation is not allowed in the current state.",
              "<InvalidStateFault xmlns=\"urn:vim25\" xsi:type=\"InvalidState\"></InvalidStateFault>")),
        ("api-ref ResourceInUse", S::InUse,
         soap("The resource 'dvportgroup-12' is in use.",
              "<ResourceInUseFault xmlns=\"urn:vim25\" xsi:type=\"ResourceInUse\"><type>DistributedVirtualPortgroup</type><name>dvportgroup-12</name></ResourceInUseFault>")),
        ("api-ref FileLocked", S::InUse,
         soap("Unable to access file [LocalDS_0] plinth/data-0.vmdk since it is locked",
              "<FileLockedFault xmlns=\"urn:vim25\" xsi:type=\"FileLocked\"><file>[LocalDS_0] plinth/data-0.vmdk</file></FileLockedFault>")),
        ("api-ref bare 409 of the file service", S::InUse,
         Answer::new(409, "Conflict").header("Content-Type", "text/plain")),
        ("vcsim CreateFolder of a name that exists", S::AlreadyExists,
         soap("",
              "<DuplicateNameFault xmlns=\"urn:vim25\" xsi:type=\"DuplicateName\"><name>DC0</name><object type=\"Folder\">group-d1</object></DuplicateNameFault>")),
        ("api-ref InsufficientMemoryResourcesFault", S::QuotaExceeded,
         soap("The available Memory resources in the parent resource pool are insufficient for the operation.",
              "<InsufficientMemoryResourcesFaultFault xmlns=\"urn:vim25\" xsi:type=\"InsufficientMemoryResourcesFault\"><unreserved>0</unreserved><requested>4096</requested></InsufficientMemoryResourcesFaultFault>")),
        ("api-ref an API gateway's 429 with Retry-After", S::rate_limited_after(Duration::from_secs(5)),
         Answer::new(429, "Too Many Requests").header("Content-Type", "text/plain").header("Retry-After", "5")),
        ("api-ref an API gateway's 429", S::rate_limited(),
         Answer::new(429, "Too Many Requests").header("Content-Type", "text/plain")),
        ("vcsim Login with a wrong password", S::Unauthenticated,
         soap("Login failure",
              "<InvalidLoginFault xmlns=\"urn:vim25\" xsi:type=\"InvalidLogin\"></InvalidLoginFault>")),
        ("api-ref NotAuthenticated", S::Unauthenticated,
         soap("The session is not authenticated.",
              "<NotAuthenticatedFault xmlns=\"urn:vim25\" xsi:type=\"NotAuthenticated\"><object type=\"Folder\">group-d1</object><privilegeId>System.View</privilegeId></NotAuthenticatedFault>")),
        ("api-ref NoPermission", S::PermissionDenied,
         soap("Permission to perform this operation was denied.",
              "<NoPermissionFault xmlns=\"urn:vim25\" xsi:type=\"NoPermission\"><object type=\"Folder\">group-d1</object><privilegeId>VirtualMachine.Inventory.Create</privilegeId></NoPermissionFault>")),
        ("vcsim CreateContainerView of type NoSuchType", S::invalid("type"),
         soap("",
              "<InvalidArgumentFault xmlns=\"urn:vim25\" xsi:type=\"InvalidArgument\"><invalidProperty>type</invalidProperty></InvalidArgumentFault>")),
        ("api-ref InvalidRequest", S::invalid_unnamed(),
         soap("Unexpected element tag \"sizeGB\" seen",
              "<InvalidRequestFault xmlns=\"urn:vim25\" xsi:type=\"InvalidRequest\"></InvalidRequestFault>")),
        ("api-ref SystemError", S::ServerError,
         soap("A general system error occurred: vix error codes = (3016, 0).",
              "<SystemErrorFault xmlns=\"urn:vim25\" xsi:type=\"SystemError\"><reason>vix error codes = (3016, 0).</reason></SystemErrorFault>")),
        ("api-ref rhttpproxy 503, the service is down", S::ServerError,
         Answer::new(503, "503 Service Unavailable (Failed to connect to endpoint: [N7Vmacore4Http16LocalServiceSpecE:0x00007f] _serverNamespace = /sdk action = Allow _port = 8085)")
             .header("Content-Type", "text/plain")),
        ("api-ref a gateway's 504", S::Timeout,
         Answer::new(504, "Gateway Timeout").header("Content-Type", "text/plain")),
    ]
}

/// A client of `url` (the path is vCenter's `/sdk`), with a 1 s request timeout.
fn client(url: &str) -> Client {
    let config = VSphereBuilder::new()
        .with_url(format!("{url}/sdk"))
        .with_username("admin")
        .with_password("not-a-secret")
        .with_datacenter("DC0")
        .with_request_timeout(Duration::from_secs(1))
        .config()
        .expect("a complete configuration");
    Client::new(&config).expect("a client without a CA file")
}

async fn classified(url: &str) -> Error {
    let got = client(url)
        .call(Operation::GetInstance, "instance vm-42", "<X/>")
        .await;
    match got {
        Err(e) => e,
        Ok(_) => Error::api(Operation::GetInstance, None, "test", "the call succeeded"),
    }
}

#[tokio::test]
async fn every_situation_is_classified_as_the_vocabulary_says() -> Result<(), TableMismatch> {
    let mut rows = Vec::new();
    for (source, situation, answer) in recorded() {
        let status = answer.status;
        let replay = Replay::start(answer).await.expect("binding 127.0.0.1");
        let got = classified(&replay.url()).await;
        rows.push(Row::new(format!("{status} {source}"), situation, got));
    }

    // No answer within the request timeout.
    let silent = Replay::silent().await.expect("binding 127.0.0.1");
    rows.push(Row::new(
        "no answer within 1 s",
        Situation::Timeout,
        classified(&silent.url()).await,
    ));

    // Nothing listens on port 1.
    rows.push(Row::new(
        "connection refused (port 1)",
        Situation::Unreachable,
        classified("http://127.0.0.1:1").await,
    ));

    check_table(&rows, &[])
}
