-- Argo CD resource action "pause" for tollgate.dev/Rollout: the same change as `tollgate pause`
-- (spec.paused = true; see src/cli/rollouts.rs control_patch). No step advances and nothing is
-- promoted while paused; a proven regression still rolls back.
obj.spec.paused = true
return obj
