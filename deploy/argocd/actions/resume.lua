-- Argo CD resource action "resume" for tollgate.dev/Rollout: the same change as `tollgate resume`
-- (spec.paused = false and spec.resumeRequest set to a new token; see src/cli/rollouts.rs
-- control_patch): releases spec.paused, a pause step without duration, or a hold.
-- A fresh token, in the CLI's format (milliseconds since the epoch, here to the second: Argo
-- CD's safe os has no finer clock); never the value already there, so the request acts once.
local token = tostring(os.time()) .. "000"
if obj.spec.resumeRequest == token then
  token = token .. "1"
end
obj.spec.paused = false
obj.spec.resumeRequest = token
return obj
