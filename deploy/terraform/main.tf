locals {
  redis_ledger = var.ledger == "redis"
  create_redis = local.redis_ledger && var.redis_url == ""

  # FunctionGraph Cron timers (seconds first; read in the region's time zone) for every TICK_PERIOD a clock can
  # fire evenly: the same table as dcs_maintenance/deployment.py (tests/test_deploy_files.py compares them).
  # Cron, not Rate: FunctionGraph does not document Rate timers as aligned to the clock.
  timer_crons = {
    "1m"  = "0 * * * * ?"
    "2m"  = "0 0/2 * * * ?"
    "3m"  = "0 0/3 * * * ?"
    "4m"  = "0 0/4 * * * ?"
    "5m"  = "0 0/5 * * * ?"
    "6m"  = "0 0/6 * * * ?"
    "10m" = "0 0/10 * * * ?"
    "12m" = "0 0/12 * * * ?"
    "15m" = "0 0/15 * * * ?"
    "20m" = "0 0/20 * * * ?"
    "30m" = "0 0/30 * * * ?"
    "1h"  = "0 0 * * * ?"
    "2h"  = "0 0 0/2 * * ?"
    "3h"  = "0 0 0/3 * * ?"
    "4h"  = "0 0 0/4 * * ?"
    "6h"  = "0 0 0/6 * * ?"
    "8h"  = "0 0 0/8 * * ?"
    "12h" = "0 0 0/12 * * ?"
    "24h" = "0 0 0 * * ?"
  }

  # The ledger. Default: SQLite in the instance's /tmp, safe because the function is capped at ONE instance.
  # Option: a Redis (DCS) instance in the function's VPC, shared by every instance; its URL holds the password,
  # so it travels in encrypted user data. The TLS options are the ledger URL's (dcs_maintenance/ledger).
  sqlite_ledger_url = "sqlite:////tmp/dcs-maintenance.sqlite3"
  redis_tls         = var.redis_ca_file == "" ? "ssl_cert_reqs=none" : "ssl_cert_reqs=required&ssl_ca_certs=${urlencode(var.redis_ca_file)}"
  created_redis_url = local.create_redis ? "rediss://:${urlencode(var.redis_password)}@${huaweicloud_dcs_instance.ledger[0].domain_name}:${huaweicloud_dcs_instance.ledger[0].port}/0?${local.redis_tls}" : ""
  ledger_url        = local.redis_ledger ? (local.create_redis ? local.created_redis_url : var.redis_url) : local.sqlite_ledger_url

  # The function's settings (FunctionGraph "user data"): the names dcs_maintenance/settings.py reads.
  environment_base = {
    DCS_REGION           = var.region
    TICK_PERIOD          = var.tick_period
    MAX_INSTANCE_NUM     = tostring(var.max_instance_num) # the same value as max_instance_num below
    BATCH_SIZE           = tostring(var.batch_size)
    PROTECT_TAG          = var.protect_tag
    DRY_RUN              = tostring(var.dry_run)
    LOG_LEVEL            = var.log_level
    NOTIFY_SMN_TOPIC_URN = var.notify_topic_urn
    CES_NAMESPACE        = var.ces_namespace
    HISTORY_RETENTION    = var.history_retention
  }
  # Secrets, in encrypted user data: every sensitive variable the function reads (tests/test_deploy_files.py).
  secret_base = {
    API_TOKEN      = var.api_token
    CALENDAR_TOKEN = var.calendar_token # ?token= on GET /calendar.ics only; empty: the feed needs API_TOKEN
  }
  ledger_environment = {
    LEDGER_URL = local.ledger_url
  }
  environment        = merge(local.environment_base, local.redis_ledger ? {} : local.ledger_environment)
  secret_environment = merge(local.secret_base, local.redis_ledger ? local.ledger_environment : {})

  timer_event = {
    name          = "dcs-maintenance-tick"
    schedule_type = "Cron"
    schedule      = local.timer_crons[var.tick_period] # TICK_PERIOD above, on the clock
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

  # At most this many instances at once (FunctionGraph's default is 400). Requests beyond the cap are throttled,
  # not queued behind the running one. MAX_INSTANCE_NUM above tells the function the same number.
  max_instance_num = tostring(var.max_instance_num)

  # VPC access for the Redis ledger only: the agency below then holds the VPC permissions FunctionGraph needs.
  vpc_id     = local.redis_ledger ? var.vpc_id : null
  network_id = local.redis_ledger ? var.subnet_id : null

  lifecycle {
    precondition {
      condition     = local.redis_ledger || var.max_instance_num == 1
      error_message = "The SQLite ledger is local to one function instance: keep max_instance_num = 1, or set ledger = \"redis\"."
    }
    precondition {
      condition     = !local.redis_ledger || (var.vpc_id != "" && var.subnet_id != "")
      error_message = "ledger = \"redis\" needs vpc_id and subnet_id: the function reaches the ledger through that VPC."
    }
    precondition {
      condition     = !local.create_redis || var.redis_password != ""
      error_message = "ledger = \"redis\" needs redis_password (TF_VAR_redis_password), or redis_url of an existing instance."
    }
  }
}

# The maintenance tick, on the clock. The planner looks back one TICK_PERIOD for due occurrences.
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
