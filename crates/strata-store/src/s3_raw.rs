//! S3 requests object_store 0.14 does not send the way Strata needs (ListMultipartUploads;
//! ListObjectsV2 with `encoding-type=url`), signed with object_store's own SigV4
//! (`AwsAuthorizer`) and sent through its HTTP connector, under the store layer's retry
//! policy.

use std::sync::Arc;

use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{ClientOptions, HttpConnector, HttpRequestBody, ReqwestConnector};

use crate::error::{Result, StoreError};
use crate::retry::with_retry;
use crate::store::Store;
use crate::url::{Scheme, StoreUrl};

/// A signed GET on one S3 bucket.
pub(crate) struct S3Raw {
    client: object_store::client::HttpClient,
    /// The bucket's URL (path style) or the endpoint's (virtual-hosted).
    base: String,
    endpoint: String,
    credential: Option<Arc<AwsCredential>>,
    region: String,
}

fn generic(text: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: text.into(),
    }
}

impl S3Raw {
    /// For `store`, or `None` when it is not S3 or its credentials come from a provider
    /// chain (instance metadata, web identity) that these requests cannot sign with.
    pub(crate) fn new(store: &Store) -> Result<Option<Self>> {
        if store.root().scheme() != Scheme::S3 {
            return Ok(None);
        }
        let s3 = &store.config().s3;
        let credential = match (&s3.access_key_id, &s3.secret_access_key) {
            (Some(k), Some(s)) => Some(Arc::new(AwsCredential {
                key_id: k.clone(),
                secret_key: s.expose().to_string(),
                token: s3.session_token.as_ref().map(|t| t.expose().to_string()),
            })),
            _ if s3.anonymous() => None,
            _ => return Ok(None),
        };
        let endpoint = s3
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", s3.region));
        let base = if s3.virtual_hosted {
            format!("{}/", endpoint.trim_end_matches('/'))
        } else {
            format!(
                "{}/{}",
                endpoint.trim_end_matches('/'),
                store.root().bucket()
            )
        };
        let client = ReqwestConnector::default()
            .connect(
                &ClientOptions::new()
                    .with_allow_http(s3.allow_http)
                    .with_timeout(store.config().retry.request_timeout)
                    .with_connect_timeout(store.config().retry.connect_timeout),
            )
            .map_err(|e| StoreError::Config {
                reason: format!("cannot configure a client for {}: {e}", store.root()),
            })?;
        Ok(Some(Self {
            client,
            base,
            endpoint,
            credential,
            region: s3.region.clone(),
        }))
    }

    /// GETs the bucket with `query` (pairs; an empty value is sent as a bare flag, as
    /// `?uploads`) and returns the reply's body; `op` names the request in errors, `shown`
    /// the URL the caller asked about.
    pub(crate) async fn get(
        &self,
        store: &Store,
        op: &'static str,
        shown: &StoreUrl,
        query: &[(&str, &str)],
    ) -> Result<String> {
        let mut url = url::Url::parse(&self.base).map_err(|e| StoreError::Config {
            reason: format!("s3.endpoint {:?}: {e}", self.endpoint),
        })?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        with_retry(&store.config().retry, op, shown, || {
            let client = self.client.clone();
            let url = url.clone();
            let credential = self.credential.clone();
            let region = self.region.clone();
            async move {
                let mut req = http::Request::builder()
                    .method(http::Method::GET)
                    .uri(url.as_str())
                    .body(HttpRequestBody::empty())
                    .map_err(|e| generic(e.to_string()))?;
                if let Some(c) = &credential {
                    AwsAuthorizer::new(c, "s3", &region).try_authorize(&mut req, None)?;
                }
                let resp = client
                    .execute(req)
                    .await
                    .map_err(|e| generic(format!("{op}: {e}")))?;
                let status = resp.status();
                let body = resp
                    .into_body()
                    .bytes()
                    .await
                    .map_err(|e| generic(format!("{op}: {e}")))?;
                let text = String::from_utf8_lossy(&body).into_owned();
                if !status.is_success() {
                    let excerpt: String = text.chars().take(300).collect();
                    return Err(generic(format!(
                        "{op} returned status code: {} {excerpt}",
                        status.as_u16()
                    )));
                }
                Ok(text)
            }
        })
        .await
    }
}
