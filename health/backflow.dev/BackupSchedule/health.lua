-- Health of a backflow BackupSchedule.
-- Suspended: Suspended. Its CronWorkflow cannot be made, its last run
-- failed, or it has had no successful backup for longer than
-- spec.missingAfterIntervals schedule intervals (the BackupMissing
-- condition): Degraded. No status yet, or a status older than the spec:
-- Progressing. Otherwise Healthy.
-- Uses only Lua's base and table libraries, so it also runs in Argo CD
-- without useOpenLibs.
local hs = {}
local status = obj.status
local function condition(conditionType)
  if status.conditions ~= nil then
    for _, c in ipairs(status.conditions) do
      if c.type == conditionType then
        return c
      end
    end
  end
  return nil
end
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the backflow controller"
  return hs
end
if obj.metadata.generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the backflow controller to observe the latest spec"
  return hs
end
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Schedule is suspended"
  return hs
end
local ready = condition("Ready")
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.message or ready.reason
  return hs
end
local runs = status.recentRuns
if runs ~= nil and #runs > 0 and runs[1].phase == "Failed" then
  hs.status = "Degraded"
  hs.message = status.message or ("The last backup " .. runs[1].name .. " failed")
  return hs
end
local missing = condition("BackupMissing")
if missing ~= nil and missing.status == "True" then
  hs.status = "Degraded"
  hs.message = missing.message or "No recent successful backup"
  return hs
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the CronWorkflow"
  return hs
end
hs.status = "Healthy"
if status.lastSuccessfulTime ~= nil then
  hs.message = "Last successful backup at " .. status.lastSuccessfulTime
else
  hs.message = "Scheduled; no backup has run yet"
end
return hs
