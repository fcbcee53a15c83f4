-- Health of a backflow BackupStorage: the Ready condition says whether the
-- bucket is reachable with the credentials. True: Healthy. False: Degraded,
-- with the reason. Not checked yet, or checked for an older spec:
-- Progressing.
-- Uses only Lua's base and table libraries, so it also runs in Argo CD
-- without useOpenLibs.
local hs = {}
local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the bucket to be checked"
  return hs
end
if obj.metadata.generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the backflow controller to check the latest spec"
  return hs
end
for _, c in ipairs(status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
      hs.message = c.message or "Bucket reachable"
    elseif c.status == "False" then
      hs.status = "Degraded"
      hs.message = (c.reason or "NotReady") .. ": " .. (c.message or "")
    else
      hs.status = "Progressing"
      hs.message = c.message or "Checking the bucket"
    end
    return hs
  end
end
hs.status = "Progressing"
hs.message = "Waiting for the bucket to be checked"
return hs
