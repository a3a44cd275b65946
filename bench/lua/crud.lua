-- Create/read/update/delete mix for wrk over nine FHIR resource types (the shape of Health
-- Samurai's public FHIR server benchmark). Each created resource is read, updated and deleted
-- exactly once, so the four operations run in equal numbers. wrk runs several connections per
-- thread and does not say which request a response answers, so the script recognises it:
-- 201 + Location = a create; 200 with ETag W/"1" = a read; 200 with W/"2" = an update; 204 = a delete.
-- Environment: WL_TOKEN (bearer token), WL_PATIENT ("Patient/<id>" that exists in the store).
local pat = os.getenv("WL_PATIENT")
local auth = "Bearer " .. os.getenv("WL_TOKEN")
local json = { ["Authorization"] = auth, ["Content-Type"] = "application/fhir+json", ["Accept"] = "application/fhir+json" }
local plain = { ["Authorization"] = auth, ["Accept"] = "application/fhir+json" }

local bodies = {
  Patient = '"name":[{"family":"Bench","given":["Load"]}],"gender":"female","birthDate":"1970-01-01","active":true}',
  Practitioner = '"name":[{"family":"Loadtest","given":["Pat"],"prefix":["Dr."]}],"active":true}',
  Organization = '"name":"Bench Hospital","active":true}',
  Encounter = '"status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"' .. pat .. '"},"period":{"start":"2024-01-01T10:00:00Z","end":"2024-01-01T10:30:00Z"}}',
  Observation = '"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"' .. pat .. '"},"effectiveDateTime":"2024-01-01T10:00:00Z","valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}',
  Condition = '"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"38341003","display":"Hypertension"}]},"subject":{"reference":"' .. pat .. '"},"onsetDateTime":"2020-05-01"}',
  MedicationRequest = '"status":"active","intent":"order","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"314076","display":"lisinopril 10 MG Oral Tablet"}]},"subject":{"reference":"' .. pat .. '"},"authoredOn":"2024-01-01"}',
  Procedure = '"status":"completed","code":{"coding":[{"system":"http://snomed.info/sct","code":"73761001","display":"Colonoscopy"}]},"subject":{"reference":"' .. pat .. '"},"performedDateTime":"2024-01-01T10:00:00Z"}',
  AllergyIntolerance = '"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification","code":"confirmed"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"91936005","display":"Allergy to penicillin"}]},"patient":{"reference":"' .. pat .. '"}}',
}
local types = { "Patient", "Practitioner", "Organization", "Encounter", "Observation", "Condition", "MedicationRequest", "Procedure", "AllergyIntolerance" }

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

-- Per thread: queues of "Type/id" waiting for their next step, and operation counters.
local readq, updq, delq = {}, {}, {}
local next_type = 0
creates, reads, updates, deletes, unexpected = 0, 0, 0, 0, 0

local function pop(q) local v = q[#q]; q[#q] = nil; return v end

function request()
  local ref = pop(delq)
  if ref then deletes = deletes + 1; return wrk.format("DELETE", "/fhir/" .. ref, plain) end
  ref = pop(updq)
  if ref then
    updates = updates + 1
    local t, id = ref:match("^(%a+)/(.+)$")
    return wrk.format("PUT", "/fhir/" .. ref, json, '{"resourceType":"' .. t .. '","id":"' .. id .. '",' .. bodies[t])
  end
  ref = pop(readq)
  if ref then reads = reads + 1; return wrk.format("GET", "/fhir/" .. ref, plain) end
  next_type = next_type % #types + 1
  local t = types[next_type]
  creates = creates + 1
  return wrk.format("POST", "/fhir/" .. t, json, '{"resourceType":"' .. t .. '",' .. bodies[t])
end

function response(status, headers, body)
  if status == 201 then
    local loc = headers["Location"] or headers["location"] or ""
    local ref = loc:match("/fhir/(%a+/[%w%-%.]+)/_history/")
    if ref then readq[#readq + 1] = ref else unexpected = unexpected + 1 end
  elseif status == 200 then
    local etag = headers["ETag"] or headers["etag"] or ""
    local t, id = body:match('"resourceType"%s*:%s*"(%a+)"'), body:match('"id"%s*:%s*"([%w%-%.]+)"')
    if not (t and id) then unexpected = unexpected + 1
    elseif etag == 'W/"1"' then updq[#updq + 1] = t .. "/" .. id
    elseif etag == 'W/"2"' then delq[#delq + 1] = t .. "/" .. id
    else unexpected = unexpected + 1 end
  elseif status ~= 204 then
    unexpected = unexpected + 1
    if unexpected < 4 then io.stderr:write("crud.lua: HTTP " .. status .. ": " .. body:sub(1, 300) .. "\n") end
  end
end

function done(summary, latency, requests)
  local c, r, u, d, x = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("creates"); r = r + t:get("reads"); u = u + t:get("updates"); d = d + t:get("deletes"); x = x + t:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format("WL requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d creates=%d reads=%d updates=%d deletes=%d unexpected=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout, c, r, u, d, x))
end
