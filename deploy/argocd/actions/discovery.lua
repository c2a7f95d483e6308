-- Argo CD resource actions for tollgate.dev/Rollout: which actions to offer for this object.
--
-- Offers only what the operator acts on in the Rollout's present state (src/rollout/decide/
-- controls.rs and steps.rs), so a button never sends a request the operator would only consume
-- with an "...Ignored" Event:
--   promote  while the version is in flight before promotion (its gates still apply)
--   abort    while there is something to abort: in flight, promoting before the commit, or a
--            promoted version within its instant-rollback window
--   retry    a Blocked or RolledBack version
--   pause    in flight and not paused
--   resume   paused (spec.paused), held (status.holdReason) or at a pause step without duration
-- Written for Argo CD's sandbox (gopher-lua, Lua 5.1 syntax; base, table and a safe os only).
local actions = {}
local spec = obj.spec or {}
local status = obj.status or {}
local phase = status.phase or "Pending"

local in_flight = phase == "ContractGate" or phase == "CanaryStarting" or phase == "FleetCheck"
  or phase == "SmokeCheck" or phase == "Analyzing"
local committed = status.stableVersion ~= nil and status.stableVersion == spec.version
local window = status.rollbackWindow
local can_undo = phase == "Succeeded" and committed and type(window) == "table"
  and window.rollingBack ~= true

local at_open_pause = false
local steps = spec.steps
if phase == "Analyzing" and type(steps) == "table" and status.currentStepIndex ~= nil then
  local step = steps[status.currentStepIndex + 1]
  if type(step) == "table" and type(step.pause) == "table" and step.pause.duration == nil then
    at_open_pause = true
  end
end

actions["promote"] = {["disabled"] = not in_flight}
actions["abort"] = {["disabled"] = not (in_flight or phase == "Pending"
  or (phase == "Promoting" and not committed) or can_undo)}
actions["retry"] = {["disabled"] = not (phase == "Blocked" or phase == "RolledBack")}
actions["pause"] = {["disabled"] = not ((in_flight or phase == "Pending") and spec.paused ~= true)}
actions["resume"] = {["disabled"] = not (spec.paused == true or status.holdReason ~= nil
  or at_open_pause)}
return actions
