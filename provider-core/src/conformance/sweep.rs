//! The sweep that runs after every check: deletes what the run created or tagged, in
//! dependency order, and reports what it could not.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;

use super::ctx::{supports, Ctx};
use crate::model::*;
use crate::{ErrorKind, ProviderExt};

/// Order the sweep deletes in: what depends on others first.
const SWEEP_ORDER: [ResourceKind; 5] = [
    ResourceKind::LoadBalancer,
    ResourceKind::FloatingIp,
    ResourceKind::Volume,
    ResourceKind::Instance,
    ResourceKind::SecurityGroup,
];
impl Ctx<'_> {
    /// Deletes everything this run created or tagged, in dependency order, then checks
    /// nothing tagged with the run is left.
    pub(super) async fn sweep(&self) -> Result<(), String> {
        let filter = self.filter();
        let tracked = self.take_tracked();
        let mut problems: Vec<String> = Vec::new();

        for kind in SWEEP_ORDER {
            let mut ids: BTreeSet<String> = tracked
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, id)| id.clone())
                .collect();
            // A kind of a family the provider lacks cannot be listed.
            if supports(self.p, kind) {
                match self.list_tagged(kind, &filter).await {
                    // Only what carries our run tag, whatever the provider returned.
                    Ok(listed) => ids.extend(
                        listed
                            .into_iter()
                            .filter(|(_, tags)| filter.matches(tags))
                            .map(|(id, _)| id),
                    ),
                    Err(e) => problems.push(format!("listing {kind}s to sweep: {e}")),
                }
            }
            if ids.is_empty() {
                continue;
            }
            match kind {
                ResourceKind::Volume => {
                    for id in &ids {
                        self.detach_for_sweep(id, &mut problems).await;
                    }
                }
                ResourceKind::SecurityGroup => {
                    for id in &ids {
                        self.unlink_group_for_sweep(id, &mut problems).await;
                    }
                }
                ResourceKind::FloatingIp => {
                    for id in &ids {
                        self.disassociate_for_sweep(id, &mut problems).await;
                    }
                }
                _ => {}
            }
            let results = join_all(ids.iter().map(|id| self.delete_for_sweep(kind, id))).await;
            for (id, r) in ids.iter().zip(results) {
                if let Err(e) = r {
                    problems.push(format!("deleting {kind} {id}: {e}"));
                }
            }
        }

        for kind in SWEEP_ORDER {
            if !supports(self.p, kind) {
                continue;
            }
            match self.list_tagged(kind, &filter).await {
                Ok(listed) => {
                    for (id, _) in listed.iter().filter(|(_, tags)| filter.matches(tags)) {
                        problems.push(format!("{kind} {id} is still listed after the sweep"));
                    }
                }
                Err(e) => problems.push(format!("listing {kind}s after the sweep: {e}")),
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    async fn detach_for_sweep(&self, id: &str, problems: &mut Vec<String>) {
        match self.p.get_volume(id).await {
            Ok(v) if v.attachment.is_some() || v.state == VolumeState::InUse => {
                match self.p.detach_volume(id).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => problems.push(format!("detaching volume {id}: {e}")),
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("getting volume {id} to sweep it: {e}")),
        }
    }

    async fn disassociate_for_sweep(&self, id: &str, problems: &mut Vec<String>) {
        match self.p.disassociate_floating_ip(id).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("disassociating floating IP {id}: {e}")),
        }
    }

    async fn unlink_group_for_sweep(&self, id: &str, problems: &mut Vec<String>) {
        let group = match self.p.get_security_group(id).await {
            Ok(g) => g,
            Err(e) if e.kind() == ErrorKind::NotFound => return,
            Err(e) => {
                problems.push(format!("getting security group {id} to sweep it: {e}"));
                return;
            }
        };
        for rule in group
            .rules
            .iter()
            .filter(|r| matches!(r.source, RuleSource::Group(_)))
        {
            match self.p.remove_security_group_rule(id, rule).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => problems.push(format!("removing a group rule of {id}: {e}")),
            }
        }
    }

    /// Deletes, tolerating `NotFound` and retrying retryable errors a few times.
    async fn delete_for_sweep(&self, kind: ResourceKind, id: &str) -> crate::Result<()> {
        let mut wait = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.delete(kind, id).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) if e.is_retryable() && attempt < 4 => {
                    tokio::time::sleep(e.retry_after().unwrap_or(wait)).await;
                    wait *= 2;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
