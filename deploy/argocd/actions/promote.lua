-- Argo CD resource action "promote" for tollgate.dev/Rollout: the same change as
-- `tollgate promote` (spec.promoteRequest set to a new token; see src/cli/rollouts.rs control_patch).
-- A fresh token, in the CLI's format (milliseconds since the epoch, here to the second: Argo
-- CD's safe os has no finer clock); never the value already there, so the request acts once.
local token = tostring(os.time()) .. "000"
if obj.spec.promoteRequest == token then
  token = token .. "1"
end
obj.spec.promoteRequest = token
return obj
