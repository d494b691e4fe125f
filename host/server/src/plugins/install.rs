//! What a node of a cluster serves is decided by the cluster: the fleet
//! asks the [`Registry`] to [`install`](Registry::install) a plugin's
//! stable version and, during a rollout's canary, a version on trial
//! beside it — each a component in the local artifact cache, by content
//! hash, with its sidecar ([`Wanted`]). Versions already mounted are reused
//! (a canary keeps its counts); others are read, checked against their
//! hash, loaded and validated off the request path, then swapped in
//! atomically as on a single host.

use std::path::PathBuf;
use std::sync::Arc;

use crate::plugins::canary::Canary;
use crate::plugins::catalog::{Catalog, Slot};
use crate::plugins::deploy::DeployError;
use crate::plugins::mounted::{Component, Mounted, mount};
use crate::plugins::registry::{Deployed, Registry};
use crate::plugins::sidecar::Sidecar;

/// A version to serve: a component file in the artifact cache, the content
/// hash it must have, and its sidecar file (absent: the defaults).
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The component file (its stem is the plugin's).
    pub component: PathBuf,
    /// BLAKE3 the file's bytes must hash to.
    pub hash: String,
    /// The sidecar file.
    pub sidecar: PathBuf,
}

/// A version that could not be installed: which (by hash) and why.
#[derive(Debug)]
pub struct Refused {
    /// The content hash of the version at fault.
    pub hash: String,
    /// Why.
    pub error: DeployError,
}

/// A version on trial beside the stable one.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The version.
    pub wanted: Wanted,
    /// Share of the requests it gets.
    pub percent: u8,
    /// The rollout's id.
    pub id: String,
}

/// Blames `wanted` for an error.
fn refused(wanted: &Wanted) -> impl FnOnce(DeployError) -> Refused + use<> {
    let hash = wanted.hash.clone();
    move |error| Refused { hash, error }
}

impl Registry {
    /// Serves `stable` as plugin `stem`, with `trial` on trial beside it if
    /// given (a route plugin's canary, judged by the cluster). A version
    /// that cannot serve is recorded as the plugin's failure (`GET
    /// /plugins`) and what served before keeps serving.
    pub async fn install(
        self: &Arc<Self>,
        stem: &str,
        stable: &Wanted,
        trial: Option<&Trial>,
    ) -> Result<Deployed, Refused> {
        let _change = self.change(stem).await;
        let current = self.catalog().slot(stem).cloned();
        let mounted = self.reuse_or_mount(stem, current.as_ref(), stable).await.map_err(refused(stable))?;
        let canary = match trial {
            None => None,
            Some(trial) => {
                let on_trial =
                    self.reuse_or_mount(stem, current.as_ref(), &trial.wanted).await.map_err(refused(&trial.wanted))?;
                let same = current.as_ref().and_then(|slot| slot.canary.clone()).filter(|canary| {
                    canary.trial() == Some(trial.id.as_str())
                        && canary.policy.percent == trial.percent
                        && Arc::ptr_eq(&canary.mounted, &on_trial)
                });
                Some(same.unwrap_or_else(|| Arc::new(Canary::on_trial(on_trial, trial.percent, trial.id.clone()))))
            }
        };
        if let Some(slot) = &current {
            let same_canary = match (&slot.canary, &canary) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            };
            if Arc::ptr_eq(&slot.mounted, &mounted) && same_canary {
                return Ok(Deployed::Unchanged(mounted));
            }
        }
        let candidates =
            std::iter::once((&mounted, stable)).chain(canary.as_ref().zip(trial).map(|(c, t)| (&c.mounted, &t.wanted)));
        for (candidate, wanted) in candidates {
            if let Err(error) = self.fits(stem, candidate) {
                return Err(refused(wanted)(self.reject(stem, &wanted.component, error).await));
            }
        }
        let _publishing = self.publishing.lock().await;
        let latest = self.catalog();
        let slot = Slot { canary: canary.clone(), ..Slot::new(stem, mounted.clone()) };
        let (catalog, _) = Catalog::build(latest.others(stem).chain([slot]).collect(), latest.failures_without(stem));
        self.publish(catalog);
        let plugin = &mounted.plugin;
        let (name, version, hash) = (plugin.name(), plugin.version(), plugin.content_hash());
        match &canary {
            Some(canary) => {
                self.metrics.swap("canary");
                let (percent, trial) = (canary.policy.percent, canary.trial().unwrap_or_default());
                let candidate = canary.mounted.plugin.content_hash();
                tracing::info!(plugin = name, version, hash, candidate, percent, trial, "canary installed");
                Ok(Deployed::Canary(canary.mounted.clone()))
            }
            None => {
                self.metrics.swap("swapped");
                tracing::info!(plugin = name, version, hash, "plugin installed");
                Ok(Deployed::Swapped(mounted))
            }
        }
    }

    /// Loads and validates `wanted` as plugin `stem` without serving it:
    /// what a deploy to a cluster checks before recording a version.
    pub async fn validate(&self, stem: &str, wanted: &Wanted) -> Result<Arc<Mounted>, DeployError> {
        let mounted = self.load(wanted).await?;
        self.fits(stem, &mounted)?;
        Ok(mounted)
    }

    /// Stops serving `stem` (running calls finish); false if it was not served.
    pub async fn unmount(&self, stem: &str) -> bool {
        let _change = self.change(stem).await;
        self.unload(stem).await
    }

    /// The version of `slot` that is `wanted` (same hash, same sidecar), or
    /// `wanted` loaded now.
    async fn reuse_or_mount(
        &self,
        stem: &str,
        slot: Option<&Slot>,
        wanted: &Wanted,
    ) -> Result<Arc<Mounted>, DeployError> {
        if let Some(slot) = slot
            && let Ok(sidecar) = Sidecar::load(&wanted.sidecar)
        {
            let served = std::iter::once(&slot.mounted).chain(slot.canary.as_ref().map(|c| &c.mounted));
            if let Some(same) =
                served.into_iter().find(|m| m.plugin.content_hash() == wanted.hash && m.sidecar == sidecar)
            {
                return Ok(same.clone());
            }
        }
        match self.load(wanted).await {
            Ok(mounted) => Ok(mounted),
            Err(error) => Err(self.reject(stem, &wanted.component, error).await),
        }
    }

    /// Reads `wanted`, checks its hash, and mounts it.
    async fn load(&self, wanted: &Wanted) -> Result<Arc<Mounted>, DeployError> {
        let component = Component::read(&wanted.component)?;
        if component.hash != wanted.hash {
            return Err(DeployError::HashMismatch {
                path: wanted.component.clone(),
                expected: wanted.hash.clone(),
                actual: component.hash,
            });
        }
        Ok(Arc::new(mount(&self.runtime, &component, &wanted.sidecar, &self.metrics).await?))
    }
}
