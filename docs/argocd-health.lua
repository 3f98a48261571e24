-- Argo CD health check for rivet.dev RivetExport and RivetValidation.
-- Install in argocd-cm as resource.customizations.health.rivet.dev_RivetExport (and _RivetValidation).
-- Reads only what the operator writes: observedGeneration, phase and the Ready/Stalled conditions.
local hs = {status = "Progressing", message = "Waiting for the operator"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation or 0
if obj.status.observedGeneration == nil or obj.status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local ready, stalled = nil, nil
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Ready" then ready = c end
  if c.type == "Stalled" then stalled = c end
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end
if obj.status.phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = obj.status.message or "Suspended"
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end
hs.message = obj.status.message or "In progress"
return hs
