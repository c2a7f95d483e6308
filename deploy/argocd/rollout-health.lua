-- Argo CD health check for tollgate.dev/Rollout.
--
-- Install: argocd-cm key `resource.customizations.health.tollgate.dev_Rollout` (see docs/gitops.md;
-- deploy/argocd/argocd-cm-patch.yaml carries this file verbatim, and a test keeps the two equal).
--
-- Contract (Argo CD): the global `obj` is the Rollout as the API server returns it, converted to Lua
-- tables (JSON null and absent fields are both nil); the script returns a table with `status`
-- (Healthy, Progressing, Degraded, Suspended, Missing or Unknown) and `message`.
--
-- Written for Argo CD's sandbox: gopher-lua (Lua 5.1 syntax), with only the base and table
-- libraries (no `string`, no `math` unless useOpenLibs is set). So: no string.format, no
-- s:sub(), no goto, no integer division; numbers are turned into text with tostring or `..` only.
-- Every field may be missing: nothing below indexes a value that was not checked to be a table.
--
-- Mapping (tests/it/gitops_health.rs checks it against Rollouts captured from the e2e run):
--   no status, or status.observedGeneration < metadata.generation      -> Progressing
--   condition Stalled=True with a holdReason (waiting for a person)     -> Suspended
--   condition Stalled=True otherwise (Blocked, RolledBack, InvalidSpec) -> Degraded
--   condition Ready=True (phase Succeeded)                              -> Healthy
--   spec.paused in a phase that is still moving (not RollingBack)       -> Suspended
--   condition Progressing=True                                          -> Progressing
--   no conditions: the same from phase/holdReason/spec.paused; an unknown phase -> Progressing

local function tbl(v)
  if type(v) == "table" then
    return v
  end
  return {}
end

local function text(v)
  if v == nil then
    return nil
  end
  if type(v) == "table" then
    return nil
  end
  local s = tostring(v)
  if s == "" then
    return nil
  end
  return s
end

local function num(v)
  if type(v) == "number" then
    return v
  end
  return nil
end

-- Joins the non-nil texts with sep (table.concat stops at the first nil, so filter first).
local function join(sep, ...)
  local out = {}
  for i = 1, select("#", ...) do
    local s = text((select(i, ...)))
    if s ~= nil then
      table.insert(out, s)
    end
  end
  return table.concat(out, sep)
end

local metadata = tbl(obj.metadata)
local spec = tbl(obj.spec)
local status = obj.status
local generation = num(metadata.generation)

local hs = {}

local function generation_text()
  if generation ~= nil then
    return "generation " .. tostring(generation)
  end
  return "this Rollout"
end

if type(status) ~= "table" then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe " .. generation_text()
    .. " (no status yet: is the tollgate operator running and watching this namespace?)"
  return hs
end

local observed = num(status.observedGeneration)
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  local seen = "no generation observed yet"
  if observed ~= nil then
    seen = "status describes generation " .. tostring(observed)
  end
  hs.message = "waiting for the operator to observe " .. generation_text() .. " (" .. seen .. ")"
  return hs
end

local phase = text(status.phase)
local hold = text(status.holdReason)
local paused = spec.paused == true

-- Conditions by type: { status = "True" | "False" | "Unknown", reason, message }.
local conditions = {}
local have_conditions = false
for _, c in ipairs(tbl(status.conditions)) do
  if type(c) == "table" and text(c.type) ~= nil then
    conditions[text(c.type)] = c
    have_conditions = true
  end
end

local function is_true(kind)
  local c = conditions[kind]
  return c ~= nil and c.status == "True"
end

-- "Analyzing, step 2/4, canary 2.5.0 at 20% (stable 2.4.0)"
local function where()
  local parts = { phase or "Pending" }
  local step = num(status.currentStepIndex)
  if step ~= nil then
    local total = ""
    if type(spec.steps) == "table" and #spec.steps > 0 then
      total = "/" .. tostring(#spec.steps)
    end
    table.insert(parts, "step " .. tostring(step + 1) .. total)
  end
  local canary = text(status.canaryVersion)
  local stable = text(status.stableVersion)
  local weight = num(status.currentWeight)
  if canary ~= nil then
    local c = "canary " .. canary
    if weight ~= nil then
      c = c .. " at " .. tostring(weight) .. "%"
    end
    if stable ~= nil then
      c = c .. " (stable " .. stable .. ")"
    end
    table.insert(parts, c)
  elseif stable ~= nil then
    table.insert(parts, "stable " .. stable)
  end
  return table.concat(parts, ", ")
end

-- The operator's own words: status.reason and status.message (falling back to the condition's).
local function why(c)
  c = tbl(c)
  local reason = text(status.reason) or text(c.reason)
  local message = text(status.message) or text(c.message)
  return join(": ", reason, message)
end

local function suspended_for_hold()
  hs.status = "Suspended"
  hs.message = join(": ", where(), "waiting for a person", hold)
  return hs
end

local function suspended_for_pause()
  hs.status = "Suspended"
  hs.message = join(": ", where(), "paused by spec.paused: no step advances and nothing is promoted,"
    .. " a regression still rolls back (set spec.paused to false, or kubectl tollgate resume)")
  return hs
end

local function degraded(c)
  hs.status = "Degraded"
  local rejected = text(status.rejectedVersion)
  hs.message = join(": ", where(), why(c))
  if rejected ~= nil and (phase == "RolledBack" or phase == "Blocked") then
    hs.message = hs.message .. "; " .. rejected
      .. " stays rejected until spec.version changes or spec.retryRequest gets a new value"
  end
  return hs
end

local function healthy(c)
  hs.status = "Healthy"
  hs.message = join(": ", where(), why(c))
  return hs
end

local function progressing(c)
  hs.status = "Progressing"
  hs.message = join(": ", where(), why(c))
  return hs
end

-- Still moving: a pause means the operator holds the steps where they are. RollingBack ignores
-- spec.paused (the operator finishes a rollback), so it is never shown as Suspended.
local function moving_phase()
  return phase ~= "Succeeded" and phase ~= "RolledBack" and phase ~= "Blocked" and phase ~= "RollingBack"
end

if have_conditions and (is_true("Stalled") or is_true("Ready") or is_true("Progressing")) then
  if is_true("Stalled") then
    local stalled = conditions["Stalled"]
    if hold ~= nil and stalled.reason ~= "InvalidSpec" and moving_phase() then
      return suspended_for_hold()
    end
    return degraded(stalled)
  end
  if is_true("Ready") then
    return healthy(conditions["Ready"])
  end
  if paused and moving_phase() then
    return suspended_for_pause()
  end
  return progressing(conditions["Progressing"])
end

-- No usable conditions (a status written before the conditions, or by an older operator):
-- the same mapping from the phase.
if phase == "Succeeded" then
  return healthy(nil)
end
if phase == "RolledBack" or phase == "Blocked" then
  return degraded(nil)
end
if hold ~= nil and moving_phase() then
  return suspended_for_hold()
end
if paused and moving_phase() then
  return suspended_for_pause()
end
return progressing(nil)
