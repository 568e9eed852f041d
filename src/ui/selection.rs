//! Which jobs the user has selected, with the usual desktop rules: click
//! selects one, Ctrl/Cmd+click toggles, Shift+click extends a range.

use std::collections::BTreeSet;

use crate::jobs::job::JobId;

/// The selected jobs and the one the preview shows.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    selected: BTreeSet<JobId>,
    focused: Option<JobId>,
}

/// How a click combines with the current selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickMode {
    /// Select only this job.
    Replace,
    /// Add or remove this job (Ctrl/Cmd).
    Toggle,
    /// Select everything from the focused job to this one (Shift).
    Extend,
}

impl Selection {
    /// Applies a click on `id`; `order` is the queue order, for ranges.
    pub fn click(&mut self, id: JobId, mode: ClickMode, order: &[JobId]) {
        match mode {
            ClickMode::Replace => {
                self.selected.clear();
                self.selected.insert(id);
            }
            ClickMode::Toggle => {
                if !self.selected.remove(&id) {
                    self.selected.insert(id);
                }
            }
            ClickMode::Extend => {
                let anchor = self
                    .focused
                    .and_then(|f| order.iter().position(|&x| x == f));
                let target = order.iter().position(|&x| x == id);
                if let (Some(a), Some(b)) = (anchor, target) {
                    let (from, to) = (a.min(b), a.max(b));
                    self.selected.extend(order[from..=to].iter().copied());
                } else {
                    self.selected.insert(id);
                }
                return;
            }
        }
        self.focused = Some(id);
    }

    /// Selects every job (Ctrl+A).
    pub fn select_all(&mut self, order: &[JobId]) {
        self.selected = order.iter().copied().collect();
        if self.focused.is_none() {
            self.focused = order.first().copied();
        }
    }

    /// Clears the selection (Esc).
    pub fn clear(&mut self) {
        self.selected.clear();
        self.focused = None;
    }

    /// Forgets a job that left the queue.
    pub fn forget(&mut self, id: JobId) {
        self.selected.remove(&id);
        if self.focused == Some(id) {
            self.focused = None;
        }
    }

    /// Whether `id` is selected.
    pub fn contains(&self, id: JobId) -> bool {
        self.selected.contains(&id)
    }

    /// The selected jobs, in id order.
    pub fn ids(&self) -> Vec<JobId> {
        self.selected.iter().copied().collect()
    }

    /// The job the preview shows: the last one clicked.
    pub fn focused(&self) -> Option<JobId> {
        self.focused
    }

    /// Whether nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.selected.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_select_toggle_and_extend_like_a_file_manager() {
        let order: Vec<_> = (1..=5).map(JobId).collect();
        let mut selection = Selection::default();
        selection.click(JobId(2), ClickMode::Replace, &order);
        selection.click(JobId(4), ClickMode::Extend, &order);
        assert_eq!(selection.ids(), [JobId(2), JobId(3), JobId(4)]);
        selection.click(JobId(3), ClickMode::Toggle, &order);
        assert_eq!(selection.ids(), [JobId(2), JobId(4)]);
        assert_eq!(selection.focused(), Some(JobId(3)));
        selection.click(JobId(5), ClickMode::Replace, &order);
        assert_eq!(selection.ids(), [JobId(5)]);
        selection.forget(JobId(5));
        assert!(selection.is_empty() && selection.focused().is_none());
    }
}
