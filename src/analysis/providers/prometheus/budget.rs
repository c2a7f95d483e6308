//! The process's budget of memory for Prometheus answers being read.
//!
//! Every answer is bounded on its own (body size, series, samples), but a look runs ten queries
//! at once and the controller runs several looks at once, so those bounds multiplied can still
//! exceed the operator's memory limit when several Rollouts point at a server that answers with
//! as much as it may. One budget, shared by every read in the process, caps the sum: a read
//! takes budget (in KiB) as its body's buffer grows and as its parse keeps series, and gives it
//! back when the answer has been turned into counts. A read that finds the budget taken fails at
//! once with [`ProviderError::Busy`], which the analysis treats as a look without data, never
//! as evidence; it does not wait, so a slow hostile server cannot queue the healthy reads behind
//! it either.

use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::analysis::providers::ProviderError;

/// Shared budget of bytes; clones share it.
#[derive(Debug, Clone)]
pub struct ResponseBudget {
    kib: Arc<Semaphore>,
    total_kib: usize,
}

static PROCESS: OnceLock<ResponseBudget> = OnceLock::new();

impl ResponseBudget {
    /// The default: 32 MiB. A healthy look holds a few KiB per query (a baseline-history read a
    /// few hundred), so eight looks at once use well under a tenth of it; and 32 MiB, with the
    /// parsed answers it stands for, fits beside the operator's ~40 MiB of its own under the
    /// chart's 256 MiB limit with room to spare.
    pub const DEFAULT_BYTES: usize = 32 << 20;

    /// A budget of `bytes` (rounded up to whole KiB, at least one).
    pub fn new(bytes: usize) -> Self {
        let total_kib = bytes.div_ceil(1024).clamp(1, Semaphore::MAX_PERMITS);
        ResponseBudget {
            kib: Arc::new(Semaphore::new(total_kib)),
            total_kib,
        }
    }

    /// Set the process's budget (`tollgate controller --prometheus-budget-mib`); only before the
    /// first read uses it. Returns false when it was already set.
    pub fn set_process(bytes: usize) -> bool {
        PROCESS.set(ResponseBudget::new(bytes)).is_ok()
    }

    /// The process's budget: the one set by [`ResponseBudget::set_process`], else the default.
    pub fn process() -> ResponseBudget {
        PROCESS
            .get_or_init(|| ResponseBudget::new(Self::DEFAULT_BYTES))
            .clone()
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> usize {
        self.total_kib * 1024
    }

    /// KiB not held by any read now.
    pub fn available_kib(&self) -> usize {
        self.kib.available_permits()
    }

    /// An empty hold for one read, grown with [`Held::grow_to`].
    pub(super) fn hold(&self) -> Held {
        Held {
            budget: self.clone(),
            permit: None,
            kib: 0,
        }
    }
}

/// The budget one read holds; given back when dropped.
pub(super) struct Held {
    budget: ResponseBudget,
    permit: Option<OwnedSemaphorePermit>,
    kib: usize,
}

impl Held {
    /// Hold at least `bytes` in all, taking more budget if needed; a message saying why not if
    /// the budget does not have it now.
    pub(super) fn grow_to(&mut self, bytes: usize) -> Result<(), String> {
        let want = bytes.div_ceil(1024);
        if want <= self.kib {
            return Ok(());
        }
        let more = u32::try_from(want - self.kib).unwrap_or(u32::MAX);
        let permit = self
            .budget
            .kib
            .clone()
            .try_acquire_many_owned(more)
            .map_err(|_| {
                format!(
                    "the operator's memory budget for Prometheus answers ({} MiB, \
                     --prometheus-budget-mib) is taken by other reads; this answer was not read",
                    self.budget.bytes() >> 20
                )
            })?;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.kib = want;
        Ok(())
    }

    /// [`Held::grow_to`] as a provider error.
    pub(super) fn grow(&mut self, bytes: usize) -> Result<(), ProviderError> {
        self.grow_to(bytes).map_err(ProviderError::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_share_the_budget_and_give_it_back() {
        let budget = ResponseBudget::new(10 * 1024);
        let mut a = budget.hold();
        a.grow(3000).unwrap();
        a.grow(2000).unwrap();
        assert_eq!(budget.available_kib(), 7);
        let mut b = budget.hold();
        b.grow(7 * 1024).unwrap();
        assert_eq!(budget.available_kib(), 0);
        let mut c = budget.hold();
        let e = c.grow(1).unwrap_err();
        assert!(
            matches!(&e, ProviderError::Busy(m) if m.contains("--prometheus-budget-mib")),
            "{e:?}"
        );
        assert!(e.is_transient());
        drop(b);
        c.grow(1).unwrap();
        // a holds 3 and c 1: a may grow to 9, not to 10.
        a.grow(10 * 1024).unwrap_err();
        a.grow(9 * 1024).unwrap();
        assert_eq!(budget.available_kib(), 0);
        drop((a, c));
        assert_eq!(budget.available_kib(), 10);
    }
}
