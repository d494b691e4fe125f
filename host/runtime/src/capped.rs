//! A route's response as it comes out of the guest: its body is checked
//! against the caller's cap while wasmtime lifts it, from the length the
//! guest returned, before a byte of it is copied — so a guest returning
//! 64 MiB against a 16 MiB cap costs the host no 64 MiB allocation and
//! copy (the route world's only "write" is its return value).
//!
//! The cap is the call's: [`within`] sets it around the export call (a
//! task-local, since lifting runs inside wasmtime, with no access to the
//! store's data); outside one, nothing is capped. A body over it fails the
//! lift with [`BodyTooLarge`], which the call classifies as
//! `response_too_large`.
//!
//! The generated bindings cannot lift a record as a type of ours, so a
//! route's `handle` export is called here, as [`Handle`], typed with
//! [`GuestResponse`]; `describe` still goes through the bindings. Lifting a
//! custom type means implementing wasmtime's `ComponentType` and `Lift` by
//! hand (what `#[derive(Lift)]` generates for records, through the same
//! `__internal` items); the body keeps `list<u8>`'s layout and delegates
//! every step but the length check to `Vec<u8>`.

use std::future::Future;

use wasmtime::Store;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{Component, ComponentExportIndex, ComponentType, Instance, Lift, TypedFunc};

use crate::bindings::route::RoutePre;
use crate::store::HostState;
use crate::types::{HttpRequest, HttpResponse};

/// The interface a route exports its handler as.
/// (wasmtime finds a 0.1.0 export by this 0.1.1 name.)
const HANDLER: &str = "corral:plugin/http-handler@0.1.1";

/// `handle: func(request: http-request) -> http-response`.
type HandleFunc<'a> = TypedFunc<(&'a HttpRequest,), (GuestResponse,)>;

/// Where a route component exports `handle`, found once at load.
#[derive(Clone, Copy)]
pub(crate) struct HandleIndex(ComponentExportIndex);

impl HandleIndex {
    /// `handle` in `component`'s `http-handler` export, if it has one.
    pub(crate) fn of(component: &Component) -> Option<HandleIndex> {
        let interface = component.get_export_index(None, HANDLER)?;
        component.get_export_index(Some(&interface), "handle").map(HandleIndex)
    }
}

/// A route instance, called through its `handle`.
#[derive(Clone, Copy)]
pub(crate) struct Handle {
    instance: Instance,
    index: HandleIndex,
}

impl Handle {
    /// A new instance of `pre` in `store`.
    pub(crate) async fn instantiate(
        pre: &RoutePre<HostState>,
        index: HandleIndex,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Handle> {
        let instance = pre.instance_pre().instantiate_async(&mut *store).await?;
        Ok(Handle { instance, index })
    }

    /// Calls `handle` with bodies capped at `max_body` bytes.
    pub(crate) async fn call(
        self,
        store: &mut Store<HostState>,
        request: &HttpRequest,
        max_body: u64,
    ) -> wasmtime::Result<HttpResponse> {
        // Type-checked here, once a call (the bindings checked every export
        // once an instance).
        let typed: HandleFunc<'_> = self.instance.get_typed_func(&mut *store, self.index.0)?;
        let (response,) = within(max_body, typed.call_async(&mut *store, (request,))).await?;
        Ok(response.into())
    }
}

tokio::task_local! {
    /// The largest body the running call may return, in bytes.
    static CAP: u64;
}

/// Runs `call` with response bodies capped at `max_bytes`.
async fn within<F: Future>(max_bytes: u64, call: F) -> F::Output {
    CAP.scope(max_bytes, call).await
}

/// A body over the call's cap, refused while it was lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the response body of {bytes} bytes exceeds the limit of {limit}")]
pub(crate) struct BodyTooLarge {
    /// The length the guest returned.
    pub(crate) bytes: u64,
    /// The call's cap.
    pub(crate) limit: u64,
}

/// `http-response` as lifted from a route guest.
#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift)]
#[component(record)]
pub(crate) struct GuestResponse {
    #[component(name = "status")]
    status: u16,
    #[component(name = "headers")]
    headers: Vec<(String, String)>,
    #[component(name = "body")]
    body: CappedBody,
}

impl From<GuestResponse> for HttpResponse {
    fn from(response: GuestResponse) -> HttpResponse {
        HttpResponse { status: response.status, headers: response.headers, body: response.body.0 }
    }
}

/// A `list<u8>` refused when longer than the call's cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CappedBody(Vec<u8>);

impl CappedBody {
    /// Fails when `len` is over the running call's cap.
    fn check(len: u32) -> wasmtime::Result<()> {
        match CAP.try_with(|cap| *cap) {
            Ok(limit) if u64::from(len) > limit => Err(BodyTooLarge { bytes: len.into(), limit }.into()),
            _ => Ok(()),
        }
    }
}

// SAFETY: the same lowered form, layout and type check as `Vec<u8>`.
#[allow(unsafe_code, reason = "wasmtime's lifting traits are unsafe to implement; this one delegates to Vec<u8>'s")]
unsafe impl ComponentType for CappedBody {
    type Lower = <Vec<u8> as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = <Vec<u8> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Vec<u8> as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads only the length of the pointer pair `Vec<u8>` lifts, then
// lets `Vec<u8>` lift it (bounds checks included).
#[allow(unsafe_code, reason = "wasmtime's lifting traits are unsafe to implement; this one delegates to Vec<u8>'s")]
unsafe impl Lift for CappedBody {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> wasmtime::Result<Self> {
        // A list lowers to (pointer, length).
        CappedBody::check(src[1].get_u32())?;
        Ok(CappedBody(Vec::<u8>::linear_lift_from_flat(cx, ty, src)?))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        // In memory: the pointer, then the length, each a little-endian u32.
        let len = bytes.get(4..8).and_then(|len| len.try_into().ok()).map_or(0, u32::from_le_bytes);
        CappedBody::check(len)?;
        Ok(CappedBody(Vec::<u8>::linear_lift_from_memory(cx, ty, bytes)?))
    }
}
