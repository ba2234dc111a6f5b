locals {
  # The function's settings (FunctionGraph "user data"): the names dcs_maintenance/settings.py reads.
  environment = {
    DCS_REGION           = var.region
    TICK_PERIOD          = var.tick_period
    LEDGER_URL           = var.ledger_url
    BATCH_SIZE           = tostring(var.batch_size)
    PROTECT_TAG          = var.protect_tag
    DRY_RUN              = tostring(var.dry_run)
    LOG_LEVEL            = var.log_level
    NOTIFY_SMN_TOPIC_URN = var.notify_topic_urn
  }
  secret_environment = {
    API_TOKEN = var.api_token
  }

  timer_event = {
    name          = "dcs-maintenance-tick"
    schedule_type = "Rate"
    schedule      = var.tick_period # the same value as TICK_PERIOD above
    user_event    = ""
  }

  apig_event = {
    name       = "dcs_maintenance_api"
    group_id   = var.apig_group_id
    env_name   = "RELEASE"
    env_id     = "DEFAULT_ENVIRONMENT_RELEASE_ID"
    protocol   = "HTTPS"
    auth       = "NONE" # the function checks Authorization: Bearer <API_TOKEN> itself
    path       = var.api_path
    match_mode = "SWA" # prefix match: every route below api_path
    req_method = "ANY"
    type       = 1
    func_info  = { timeout = 60000 }
  }

  code_key = "${var.function_name}/${filemd5(var.package_path)}.zip"
}

resource "huaweicloud_obs_bucket_object" "code" {
  bucket       = var.code_bucket
  key          = local.code_key
  source       = var.package_path
  etag         = filemd5(var.package_path)
  content_type = "application/zip"
}

resource "huaweicloud_fgs_function" "dcs_maintenance" {
  name                  = var.function_name
  app                   = "default"
  description           = "Scheduled maintenance of DCS (Redis) instances: restart, flush, stop/start windows"
  functiongraph_version = "v2"
  runtime               = var.runtime
  handler               = "handler.handler"
  memory_size           = var.memory_size
  timeout               = var.timeout
  agency                = huaweicloud_identity_agency.dcs_maintenance.name
  code_type             = "obs"
  code_url              = "https://${var.code_bucket}.obs.${var.region}.myhuaweicloud.com/${huaweicloud_obs_bucket_object.code.key}"
  user_data             = jsonencode(local.environment)
  encrypted_user_data   = jsonencode(local.secret_environment)
}

# The maintenance tick. Its period is TICK_PERIOD: the planner looks back one period for due occurrences.
resource "huaweicloud_fgs_function_trigger" "timer" {
  function_urn = huaweicloud_fgs_function.dcs_maintenance.urn
  type         = "TIMER"
  status       = "ACTIVE"
  event_data   = jsonencode(local.timer_event)
}

# Manual runs, previews and validation over HTTP (optional).
resource "huaweicloud_fgs_function_trigger" "apig" {
  count        = var.apig_group_id == "" ? 0 : 1
  function_urn = huaweicloud_fgs_function.dcs_maintenance.urn
  type         = var.apig_instance_id == "" ? "APIG" : "DEDICATEDGATEWAY"
  status       = "ACTIVE"
  event_data   = jsonencode(var.apig_instance_id == "" ? local.apig_event : merge(local.apig_event, { instance_id = var.apig_instance_id }))
}

# A failed tick is reported (summary, logs, SMN) and must not be re-run by the platform: the function never
# raises for expected failures, and asynchronous retries are off so an unexpected crash is not replayed either.
resource "huaweicloud_fgs_async_invoke_configuration" "no_retries" {
  function_urn                   = huaweicloud_fgs_function.dcs_maintenance.urn
  max_async_retry_attempts       = 0
  max_async_event_age_in_seconds = 3600
}
