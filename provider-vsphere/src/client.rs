//! The vim25 client: one session, the ten-odd calls the provider makes, task polling
//! through a shared [`Watch`] (one `RetrievePropertiesEx` per interval for all tasks waited on), and datastore file access over `/folder`.
//!
//! Calls used: `RetrieveServiceContent`, `Login`, `CreateContainerView`,
//! `RetrievePropertiesEx` / `ContinueRetrievePropertiesEx`, `CloneVM_Task`,
//! `ReconfigVM_Task`, `PowerOnVM_Task`, `PowerOffVM_Task`, `Destroy_Task`,
//! `AddCustomFieldDef`, `SetField`, `CreateVirtualDisk_Task`, `DeleteVirtualDisk_Task`,
//! `MakeDirectory`, `DeleteDatastoreFile_Task`, `SearchDatastore_Task`, plus HTTP GET/PUT
//! of small files under `/folder` (as `govc datastore.upload` does).

use std::collections::BTreeMap;
use std::time::Duration;

use provider_core::requests::RequestCounts;
use provider_core::wait::{Poll, Watch};
use provider_core::{Error, Operation, Result};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::config::VSphereConfig;
use crate::error::{fault_error, http_error, retry_after_of, status_error};
use crate::soap::{envelope, esc, fault_of, parse, Element, Fault, MoRef};

/// The managed objects of `ServiceContent` the provider uses.
#[derive(Debug, Clone)]
pub struct ServiceContent {
    /// Inventory root folder.
    pub root_folder: MoRef,
    /// Property collector.
    pub property_collector: MoRef,
    /// View manager.
    pub view_manager: MoRef,
    /// Session manager.
    pub session_manager: MoRef,
    /// Custom fields manager.
    pub custom_fields_manager: MoRef,
    /// Virtual disk manager.
    pub virtual_disk_manager: MoRef,
    /// File manager.
    pub file_manager: MoRef,
}

/// The properties of one object, by property path.
#[derive(Debug, Clone)]
pub struct ObjectContent {
    /// The object.
    pub obj: MoRef,
    /// Its properties (the `val` elements), by path.
    pub props: BTreeMap<String, Element>,
}

impl ObjectContent {
    /// The text of property `path`.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.props.get(path).map(|e| e.text.as_str())
    }
}

/// One vCenter session over HTTPS.
pub struct Client {
    http: reqwest::Client,
    sdk_url: String,
    base_url: String,
    username: String,
    password: SecretString,
    cookie: Mutex<Option<String>>,
    content: tokio::sync::OnceCell<ServiceContent>,
    /// Tasks waited for at once share one `RetrievePropertiesEx` per poll interval.
    tasks: Watch<Element>,
    page_size: usize,
    requests: std::sync::atomic::AtomicU64,
    counts: RequestCounts,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("sdk_url", &self.sdk_url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

const SESSION_COOKIE: &str = "vmware_soap_session";

/// Percent-encodes a URL query value or path segment (RFC 3986 unreserved kept).
pub(crate) fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for `config` (no network traffic yet).
    pub fn new(config: &VSphereConfig) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(15));
        if let Some(path) = &config.ca_cert_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::config(
                    "VSphere.CACertFile",
                    format!("cannot read {}: {e}", path.display()),
                )
                .with_source(e)
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::config(
                    "VSphere.CACertFile",
                    format!("{} holds no PEM certificate: {e}", path.display()),
                )
                .with_source(e)
            })?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder.build().map_err(|e| {
            Error::config("VSphere.CACertFile", format!("TLS setup failed: {e}")).with_source(e)
        })?;
        let base_url = config
            .url
            .find("://")
            .and_then(|i| {
                config.url[i + 3..]
                    .find('/')
                    .map(|j| config.url[..i + 3 + j].to_string())
            })
            .unwrap_or_else(|| config.url.clone());
        Ok(Self {
            http,
            sdk_url: config.url.clone(),
            base_url,
            username: config.username.clone(),
            password: config.password.clone(),
            cookie: Mutex::new(None),
            content: tokio::sync::OnceCell::new(),
            tasks: Watch::new(config.poller.clone()),
            page_size: config.page_size,
            requests: std::sync::atomic::AtomicU64::new(0),
            counts: RequestCounts::new(),
        })
    }

    /// HTTP requests sent so far (SOAP calls and file transfers).
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// HTTP requests sent so far per operation: `vim25.<SOAP method>` for SOAP calls,
    /// `file.GET` / `file.PUT` for datastore file transfers.
    pub fn counts(&self) -> &RequestCounts {
        &self.counts
    }

    fn count(&self, key: &str) {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.counts.add(key);
    }

    async fn post(
        &self,
        op: Operation,
        body: &str,
        cookie: Option<&str>,
    ) -> Result<(Element, Option<String>)> {
        self.count(&soap_key(body));
        let mut req = self
            .http
            .post(&self.sdk_url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", "urn:vim25/6.5")
            .body(envelope(body));
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        let resp = req.send().await.map_err(|e| http_error(op, e))?;
        let status = resp.status().as_u16();
        let set_cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(SESSION_COOKIE))
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        let retry_after = retry_after_of(resp.headers());
        let text = resp.text().await.map_err(|e| http_error(op, e))?;
        let doc = match parse(&text) {
            Ok(d) => d,
            Err(e) if status >= 400 => {
                return Err(status_error(
                    op,
                    status,
                    retry_after,
                    &format!("vCenter SOAP endpoint (answer without a fault: {e})"),
                ))
            }
            Err(e) => {
                return Err(
                    Error::transient(op, format!("unreadable vCenter answer: {e}")).with_source(e),
                )
            }
        };
        Ok((doc, set_cookie))
    }

    /// The service content (fetched once).
    pub async fn content(&self) -> Result<&ServiceContent> {
        self.content
            .get_or_try_init(|| async {
                let op = Operation::ListAvailabilityZones;
                let (doc, _) = self
                    .post(
                        op,
                        "<RetrieveServiceContent><_this type=\"ServiceInstance\">ServiceInstance</_this></RetrieveServiceContent>",
                        None,
                    )
                    .await?;
                if let Some(f) = fault_of(&doc) {
                    return Err(fault_error(op, "service content", &f));
                }
                let rv = doc
                    .find("returnval")
                    .ok_or_else(|| Error::transient(op, "RetrieveServiceContent returned nothing"))?;
                let get = |name: &str| {
                    rv.child(name)
                        .and_then(Element::moref)
                        .ok_or_else(|| {
                            Error::api(
                                op,
                                None,
                                "ServiceContent",
                                format!("vCenter's service content has no {name}"),
                            )
                        })
                };
                Ok(ServiceContent {
                    root_folder: get("rootFolder")?,
                    property_collector: get("propertyCollector")?,
                    view_manager: get("viewManager")?,
                    session_manager: get("sessionManager")?,
                    custom_fields_manager: get("customFieldsManager")?,
                    virtual_disk_manager: get("virtualDiskManager")?,
                    file_manager: get("fileManager")?,
                })
            })
            .await
    }

    async fn login(&self, op: Operation) -> Result<String> {
        let sm = self.content().await?.session_manager.clone();
        let body = format!(
            "<Login>{}<userName>{}</userName><password>{}</password></Login>",
            sm.xml("_this"),
            esc(&self.username),
            esc(self.password.expose_secret())
        );
        let (doc, cookie) = self.post(op, &body, None).await?;
        if let Some(f) = fault_of(&doc) {
            return Err(fault_error(op, "session", &f));
        }
        cookie.ok_or_else(|| {
            Error::unauthorized(op, "vCenter accepted the login but set no session cookie")
        })
    }

    /// Sends one call in the session, logging in first (and once more when the session
    /// expired). Returns the response element (`<XResponse>`) or the classified fault.
    pub async fn call(&self, op: Operation, resource: &str, body: &str) -> Result<Element> {
        for attempt in 0..2 {
            let cookie = {
                let mut c = self.cookie.lock().await;
                match c.as_ref() {
                    Some(v) => v.clone(),
                    None => {
                        let v = self.login(op).await?;
                        *c = Some(v.clone());
                        v
                    }
                }
            };
            let (doc, _) = self.post(op, body, Some(&cookie)).await?;
            match fault_of(&doc) {
                Some(f) if f.kind == "NotAuthenticated" && attempt == 0 => {
                    let mut c = self.cookie.lock().await;
                    if c.as_deref() == Some(cookie.as_str()) {
                        *c = None;
                    }
                    continue;
                }
                Some(f) => return Err(fault_error(op, resource, &f)),
                None => {
                    return doc
                        .find("Body")
                        .and_then(|b| b.children.first().cloned())
                        .ok_or_else(|| Error::transient(op, "empty SOAP body"))
                }
            }
        }
        Err(Error::unauthorized(
            op,
            "the vCenter session expired twice in a row",
        ))
    }

    /// Like [`Self::call`], returning the fault itself instead of an error (for calls
    /// whose faults the caller interprets, e.g. `DuplicateName`).
    pub async fn call_raw(
        &self,
        op: Operation,
        resource: &str,
        body: &str,
    ) -> Result<std::result::Result<Element, Fault>> {
        match self.call(op, resource, body).await {
            Ok(e) => Ok(Ok(e)),
            Err(Error::AlreadyExists { .. }) => Ok(Err(Fault {
                kind: "DuplicateName".into(),
                message: String::new(),
                detail: None,
            })),
            Err(e) => Err(e),
        }
    }

    /// `CreateContainerView` over `container` for objects of `kinds`.
    pub async fn create_container_view(
        &self,
        op: Operation,
        container: &MoRef,
        kinds: &[&str],
    ) -> Result<MoRef> {
        let vm = self.content().await?.view_manager.clone();
        let types: String = kinds
            .iter()
            .map(|k| format!("<type>{}</type>", esc(k)))
            .collect();
        let body = format!(
            "<CreateContainerView>{}{}{types}<recursive>true</recursive></CreateContainerView>",
            vm.xml("_this"),
            container.xml("container")
        );
        let resp = self.call(op, "container view", &body).await?;
        resp.child("returnval")
            .and_then(Element::moref)
            .ok_or_else(|| Error::transient(op, "CreateContainerView returned no view"))
    }

    /// `RetrievePropertiesEx` of `paths` on objects of `kind`: those of the container
    /// `view` when given, else the objects `objs`. Follows the token to the end.
    pub async fn retrieve(
        &self,
        op: Operation,
        kind: &str,
        view: Option<&MoRef>,
        objs: &[MoRef],
        paths: &[&str],
    ) -> Result<Vec<ObjectContent>> {
        match view {
            Some(v) => self.retrieve_view(op, v, &[(kind, paths)]).await,
            None => {
                let object_set: String = objs
                    .iter()
                    .map(|o| format!("<objectSet>{}<skip>false</skip></objectSet>", o.xml("obj")))
                    .collect();
                self.retrieve_sets(op, kind, &[(kind, paths)], &object_set)
                    .await
            }
        }
    }

    /// One `RetrievePropertiesEx` of the objects of container `view`, several kinds at
    /// once: `(kind, paths)` each (objects of other kinds are left out).
    pub async fn retrieve_view(
        &self,
        op: Operation,
        view: &MoRef,
        kinds: &[(&str, &[&str])],
    ) -> Result<Vec<ObjectContent>> {
        let object_set = format!(
            "<objectSet>{}<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet>",
            view.xml("obj")
        );
        let what = kinds.first().map(|(k, _)| *k).unwrap_or("objects");
        self.retrieve_sets(op, what, kinds, &object_set).await
    }

    async fn retrieve_sets(
        &self,
        op: Operation,
        what: &str,
        kinds: &[(&str, &[&str])],
        object_set: &str,
    ) -> Result<Vec<ObjectContent>> {
        let pc = self.content().await?.property_collector.clone();
        let prop_sets: String = kinds
            .iter()
            .map(|(kind, paths)| {
                let path_set: String = paths
                    .iter()
                    .map(|p| format!("<pathSet>{}</pathSet>", esc(p)))
                    .collect();
                format!("<propSet><type>{}</type>{path_set}</propSet>", esc(kind))
            })
            .collect();
        let body = format!(
            "<RetrievePropertiesEx>{}<specSet>{prop_sets}{object_set}</specSet><options><maxObjects>{}</maxObjects></options></RetrievePropertiesEx>",
            pc.xml("_this"),
            self.page_size
        );
        let mut out = Vec::new();
        let mut resp = self.call(op, what, &body).await?;
        loop {
            let Some(rv) = resp.child("returnval") else {
                return Ok(out);
            };
            for o in rv.children_named("objects") {
                let Some(obj) = o.child("obj").and_then(Element::moref) else {
                    continue;
                };
                let mut props = BTreeMap::new();
                for ps in o.children_named("propSet") {
                    if let (Some(name), Some(val)) = (ps.child_text("name"), ps.child("val")) {
                        props.insert(name.to_string(), val.clone());
                    }
                }
                out.push(ObjectContent { obj, props });
            }
            match rv.child_text("token") {
                Some(token) if !token.is_empty() => {
                    let body = format!(
                        "<ContinueRetrievePropertiesEx>{}<token>{}</token></ContinueRetrievePropertiesEx>",
                        pc.xml("_this"),
                        esc(token)
                    );
                    resp = self.call(op, what, &body).await?;
                }
                _ => return Ok(out),
            }
        }
    }

    /// Calls a `*_Task` method and waits for the task; returns `info.result` (if any).
    pub async fn run_task(
        &self,
        op: Operation,
        resource: &str,
        body: &str,
        timeout: Duration,
    ) -> Result<Option<Element>> {
        let resp = self.call(op, resource, body).await?;
        let task = resp
            .child("returnval")
            .and_then(Element::moref)
            .ok_or_else(|| Error::transient(op, "the call returned no task"))?;
        self.wait_task(op, resource, &task, timeout).await
    }

    /// Waits for `task` through the shared poller; a task error is classified like a
    /// fault of the call.
    pub async fn wait_task(
        &self,
        op: Operation,
        resource: &str,
        task: &MoRef,
        timeout: Duration,
    ) -> Result<Option<Element>> {
        self.tasks
            .until(
                op,
                &format!("task {} for {resource}", task.value),
                "success",
                timeout,
                &task.value,
                |ids| async move {
                    let tasks: Vec<MoRef> = ids.iter().map(|id| MoRef::new("Task", id)).collect();
                    let got = self.retrieve(op, "Task", None, &tasks, &["info"]).await?;
                    Ok(got
                        .into_iter()
                        .filter_map(|o| Some((o.obj.value, o.props.get("info")?.clone())))
                        .collect())
                },
                |info| {
                    let info = info.ok_or_else(|| Error::transient(op, "task info missing"))?;
                    match info.child_text("state").unwrap_or("") {
                        "success" => Ok(Poll::Ready(info.child("result").cloned())),
                        "error" => {
                            let f = info
                                .child("error")
                                .map(Fault::from_element)
                                .unwrap_or(Fault {
                                    kind: "TaskError".into(),
                                    message: "task failed".into(),
                                    detail: None,
                                });
                            Err(fault_error(op, resource, &f))
                        }
                        s => Ok(Poll::Pending(format!("task {s}"))),
                    }
                },
            )
            .await
    }

    fn file_url(&self, datacenter: &str, datastore: &str, path: &str) -> String {
        format!(
            "{}/folder/{}?dcPath={}&dsName={}",
            self.base_url,
            pct(path),
            pct(datacenter),
            pct(datastore)
        )
    }

    async fn session_cookie(&self, op: Operation) -> Result<String> {
        let mut c = self.cookie.lock().await;
        if let Some(v) = c.as_ref() {
            return Ok(v.clone());
        }
        let v = self.login(op).await?;
        *c = Some(v.clone());
        Ok(v)
    }

    /// Reads a small datastore file; `None` when it does not exist.
    pub async fn get_file(
        &self,
        op: Operation,
        datacenter: &str,
        datastore: &str,
        path: &str,
    ) -> Result<Option<String>> {
        let cookie = self.session_cookie(op).await?;
        self.count("file.GET");
        let resp = self
            .http
            .get(self.file_url(datacenter, datastore, path))
            .header("Cookie", cookie)
            .send()
            .await
            .map_err(|e| http_error(op, e))?;
        match resp.status().as_u16() {
            404 => Ok(None),
            s if s >= 300 => Err(status_error(
                op,
                s,
                retry_after_of(resp.headers()),
                &format!("reading [{datastore}] {path}"),
            )),
            _ => Ok(Some(resp.text().await.map_err(|e| http_error(op, e))?)),
        }
    }

    /// Writes a small datastore file (creating its folder).
    pub async fn put_file(
        &self,
        op: Operation,
        datacenter: &str,
        datastore: &str,
        path: &str,
        body: String,
    ) -> Result<()> {
        let cookie = self.session_cookie(op).await?;
        self.count("file.PUT");
        let resp = self
            .http
            .put(self.file_url(datacenter, datastore, path))
            .header("Cookie", cookie)
            .body(body)
            .send()
            .await
            .map_err(|e| http_error(op, e))?;
        match resp.status().as_u16() {
            s if s >= 300 => Err(status_error(
                op,
                s,
                retry_after_of(resp.headers()),
                &format!("writing [{datastore}] {path}"),
            )),
            _ => Ok(()),
        }
    }
}

/// `vim25.<method>` for a SOAP body (its first element's name).
fn soap_key(body: &str) -> String {
    let name: String = body
        .trim_start()
        .trim_start_matches('<')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        "vim25.unknown".into()
    } else {
        format!("vim25.{name}")
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::config::VSphereBuilder;

    fn config(url: &str) -> VSphereConfig {
        VSphereBuilder::new()
            .with_url(url)
            .with_username("admin")
            .with_password("s3cret-pw")
            .with_datacenter("dc")
            .with_request_timeout(Duration::from_secs(5))
            .config()
            .unwrap()
    }

    /// Every text a report may show: Display and Debug of the error and of each cause.
    fn everything_shown(e: &Error) -> String {
        let mut out = format!("{e}\n{e:?}\n");
        let mut cause = e.source();
        while let Some(c) = cause {
            out.push_str(&format!("{c}\n{c:?}\n"));
            cause = c.source();
        }
        out
    }

    #[tokio::test]
    async fn a_transport_failure_keeps_reqwest_as_source_without_the_password() {
        // Nothing listens on port 1; the password also sits in the URL, as GOVC_URL allows.
        let client = Client::new(&config("http://admin:s3cret-pw@127.0.0.1:1/sdk")).unwrap();
        let e = client
            .call(Operation::ListAvailabilityZones, "zones", "<X/>")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), provider_core::ErrorKind::Transient, "{e:?}");
        assert!(e.source().is_some(), "{e:?}");
        assert!(
            e.underlying()
                .and_then(|u| u.downcast_ref::<reqwest::Error>())
                .is_some(),
            "{e:?}"
        );
        let shown = everything_shown(&e);
        assert!(!shown.contains("s3cret-pw"), "{shown}");
    }

    #[test]
    fn an_unreadable_ca_file_is_a_config_error_with_its_io_cause() {
        let mut cfg = config("https://127.0.0.1:1/sdk");
        cfg.ca_cert_file = Some("/nonexistent/plinth-ca.pem".into());
        let e = Client::new(&cfg).err().unwrap();
        assert_eq!(e.kind(), provider_core::ErrorKind::Config, "{e:?}");
        assert!(e.source().is_some(), "{e:?}");
        assert!(!everything_shown(&e).contains("s3cret-pw"));
    }
}
