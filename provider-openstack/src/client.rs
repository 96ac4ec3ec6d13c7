//! The HTTP layer: one authenticated `openstack_sdk` session (Keystone v3 token, catalog,
//! endpoint discovery, microversion negotiation, re-authentication on 401 and renewal
//! before expiry), and one small generic endpoint type through which every call of this
//! crate goes, so each answer's status, headers and fault body reach [`crate::error`].

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, Method};
use openstack_sdk::api::rest_endpoint_prelude::*;
use openstack_sdk::api::{raw, ApiError, QueryAsync};
use openstack_sdk::{AsyncOpenStack, RenewHandle};
use provider_core::requests::RequestCounts;
use provider_core::{Operation, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{from_api_error, from_response};

/// The services this crate calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// Nova.
    Compute,
    /// Neutron.
    Network,
    /// Cinder (v3).
    Volume,
    /// Octavia.
    LoadBalancer,
    /// Glance (image lookup by name).
    Image,
}

/// Compute microversion of every Nova call: 2.52 allows tags at server creation (and
/// includes 2.26's server tags, 2.19's description, 2.3's extended attributes).
pub(crate) const COMPUTE_MICROVERSION: ApiVersion = ApiVersion {
    major: 2,
    minor: 52,
};
/// Block-storage microversion: 3.0 is enough for everything used here.
const VOLUME_MICROVERSION: ApiVersion = ApiVersion { major: 3, minor: 0 };

impl Service {
    fn service_type(self) -> ServiceType {
        match self {
            Service::Compute => ServiceType::Compute,
            Service::Network => ServiceType::Network,
            Service::Volume => ServiceType::BlockStorage,
            Service::LoadBalancer => ServiceType::LoadBalancer,
            Service::Image => ServiceType::Image,
        }
    }

    /// The major API version the path is relative to.
    fn api_version(self) -> ApiVersion {
        match self {
            Service::Compute => ApiVersion::new(2, 1),
            Service::Network => ApiVersion::new(2, 0),
            Service::Volume => ApiVersion::new(3, 0),
            Service::LoadBalancer => ApiVersion::new(2, 0),
            Service::Image => ApiVersion::new(2, 0),
        }
    }

    /// The service's short name in request counts.
    fn short(self) -> &'static str {
        match self {
            Service::Compute => "nova",
            Service::Network => "neutron",
            Service::Volume => "cinder",
            Service::LoadBalancer => "octavia",
            Service::Image => "glance",
        }
    }

    fn microversion(self) -> Option<ApiVersion> {
        match self {
            Service::Compute => Some(COMPUTE_MICROVERSION),
            Service::Volume => Some(VOLUME_MICROVERSION),
            _ => None,
        }
    }
}

/// One REST call: what the sdk needs to send it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    method: Method,
    service: Service,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    headers: HeaderMap,
}

impl Call {
    fn new(method: Method, service: Service, path: impl Into<String>) -> Self {
        Self {
            method,
            service,
            path: path.into(),
            query: Vec::new(),
            body: None,
            headers: HeaderMap::new(),
        }
    }

    /// A GET.
    pub(crate) fn get(service: Service, path: impl Into<String>) -> Self {
        Self::new(Method::GET, service, path)
    }

    /// A DELETE.
    pub(crate) fn delete(service: Service, path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, service, path)
    }

    /// A POST with a JSON body.
    pub(crate) fn post(service: Service, path: impl Into<String>, body: &Value) -> Self {
        Self::new(Method::POST, service, path).json(body)
    }

    /// A PUT with a JSON body.
    pub(crate) fn put(service: Service, path: impl Into<String>, body: &Value) -> Self {
        Self::new(Method::PUT, service, path).json(body)
    }

    fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    /// Adds a query parameter.
    pub(crate) fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_string(), value.into()));
        self
    }

    /// The request-count key: `nova.POST /servers`, `neutron.GET /security-groups/{id}`.
    fn count_key(&self) -> String {
        format!(
            "{}.{} {}",
            self.service.short(),
            self.method,
            provider_core::requests::path_template(&self.path)
        )
    }

    fn describe(&self) -> String {
        format!("{} {:?} {}", self.method, self.service, self.path)
    }
}

impl RestEndpoint for Call {
    fn method(&self) -> Method {
        self.method.clone()
    }

    fn endpoint(&self) -> Cow<'static, str> {
        Cow::Owned(self.path.clone())
    }

    fn service_type(&self) -> ServiceType {
        self.service.service_type()
    }

    fn parameters(&self) -> QueryParams<'_> {
        let mut q = QueryParams::default();
        for (k, v) in &self.query {
            q.push(k.as_str(), v.as_str());
        }
        q
    }

    fn body(&self) -> std::result::Result<Option<(&'static str, Vec<u8>)>, BodyError> {
        Ok(self.body.clone().map(|b| ("application/json", b)))
    }

    fn request_headers(&self) -> Option<&HeaderMap> {
        Some(&self.headers)
    }

    fn api_version(&self) -> Option<ApiVersion> {
        Some(self.service.api_version())
    }

    fn min_version(&self) -> Option<ApiVersion> {
        self.service.microversion()
    }
}

/// The authenticated session and what every call needs.
pub(crate) struct Api {
    os: AsyncOpenStack,
    page_size: usize,
    calls: AtomicU64,
    counts: RequestCounts,
    _renew: RenewHandle,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("page_size", &self.page_size)
            .field("calls", &self.calls.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Api {
    pub(crate) fn new(os: AsyncOpenStack, page_size: usize, renew: RenewHandle) -> Self {
        Self {
            os,
            page_size,
            calls: AtomicU64::new(0),
            counts: RequestCounts::new(),
            _renew: renew,
        }
    }

    /// The sdk session (for auth-level operations).
    pub(crate) fn session(&self) -> &AsyncOpenStack {
        &self.os
    }

    /// HTTP requests sent so far (lists count one per page).
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// HTTP requests sent so far, per service and operation (see
    /// [`crate::OpenStackProvider::request_counts`]).
    pub(crate) fn counts(&self) -> &RequestCounts {
        &self.counts
    }

    /// The page size of list calls.
    pub(crate) fn page_size(&self) -> usize {
        self.page_size
    }

    /// Sends `call`; a non-2xx answer becomes the classified error for `op`.
    pub(crate) async fn send(&self, op: Operation, call: Call) -> Result<Value> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.counts.add(call.count_key());
        let rsp = match raw(call.clone())
            .skip_error_check(true)
            .query_async(&self.os)
            .await
        {
            Ok(rsp) => rsp,
            // A token renewal re-reads the catalog and forgets the discovered endpoint
            // versions until it has discovered them again: discover now and retry once.
            Err(ApiError::Catalog { .. }) => {
                if let Err(e) = self
                    .os
                    .discover_service_endpoint(&call.service.service_type())
                    .await
                {
                    tracing::debug!(error = %e, "endpoint discovery failed");
                }
                self.calls.fetch_add(1, Ordering::Relaxed);
                self.counts.add(call.count_key());
                raw(call.clone())
                    .skip_error_check(true)
                    .query_async(&self.os)
                    .await
                    .map_err(|e| from_api_error(op, &call.describe(), e))?
            }
            Err(e) => return Err(from_api_error(op, &call.describe(), e)),
        };
        let status = rsp.status();
        let body = rsp.body();
        if !status.is_success() {
            return Err(from_response(op, status.as_u16(), rsp.headers(), body));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(body).map_err(|e| {
            provider_core::Error::transient(
                op,
                format!("{}: answer is not JSON: {e}", call.describe()),
            )
            .with_source(e)
        })
    }

    /// Sends `call` and decodes the object under `key`.
    pub(crate) async fn send_as<T: DeserializeOwned>(
        &self,
        op: Operation,
        call: Call,
        key: &str,
    ) -> Result<T> {
        let what = call.describe();
        let mut v = self.send(op, call).await?;
        decode(op, &what, v[key].take())
    }

    /// Lists every item under `key`, following marker/limit pages to the end. The
    /// marker is the `id` of the last item of a page; a page shorter than the limit is
    /// the last.
    pub(crate) async fn list<T: DeserializeOwned>(
        &self,
        op: Operation,
        call: Call,
        key: &str,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut page_call = call.clone().query("limit", self.page_size.to_string());
            if let Some(m) = &marker {
                page_call = page_call.query("marker", m.clone());
            }
            let what = page_call.describe();
            let mut v = self.send(op, page_call).await?;
            let items = match v[key].take() {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                other => {
                    return Err(provider_core::Error::transient(
                        op,
                        format!("{what}: {key} is not a list: {other}"),
                    ))
                }
            };
            let n = items.len();
            let last_id = items
                .last()
                .and_then(|i| i.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            for item in items {
                out.push(decode(op, &what, item)?);
            }
            match last_id {
                Some(id) if n >= self.page_size && marker.as_deref() != Some(id.as_str()) => {
                    marker = Some(id)
                }
                _ => return Ok(out),
            }
        }
    }
}

fn decode<T: DeserializeOwned>(op: Operation, what: &str, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        provider_core::Error::transient(op, format!("{what}: unexpected answer: {e}"))
            .with_source(e)
    })
}
