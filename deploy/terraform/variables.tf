variable "region" {
  description = "Region of the function (DCS_REGION): schedules act here unless they name another region and its project."
  type        = string
  default     = "cn-north-4"
}

variable "function_name" {
  description = "FunctionGraph function name."
  type        = string
  default     = "dcs-maintenance"
}

variable "runtime" {
  description = "FunctionGraph runtime; must match `python -m dcs_maintenance package --python` (3.10 -> Python3.10)."
  type        = string
  default     = "Python3.10"

  validation {
    condition     = contains(["Python3.10", "Python3.12"], var.runtime)
    error_message = "Use Python3.10 or Python3.12, and build the zip with the same --python."
  }
}

variable "package_path" {
  description = "The zip built by `python -m dcs_maintenance package`."
  type        = string
  default     = "../../dist/dcs-maintenance.zip"
}

variable "code_bucket" {
  description = "An existing OBS bucket (same region) that receives the code zip."
  type        = string
}

variable "memory_size" {
  description = "Memory in MB; the DCS SDK alone takes about 45 MB."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Function timeout in seconds (the platform default of 3 s is far too short for API calls)."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout >= 60 && var.timeout <= 900
    error_message = "Give the function at least 60 seconds (and at most 900 with this provider)."
  }
}

variable "tick_period" {
  description = "TICK_PERIOD, and the Cron TIMER trigger derived from it (local.timer_crons): a period a clock can fire evenly."
  type        = string
  default     = "5m"

  validation {
    condition     = contains(["1m", "2m", "3m", "4m", "5m", "6m", "10m", "12m", "15m", "20m", "30m", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "24h"], var.tick_period)
    error_message = "Use minutes dividing an hour (1m, 2m, 3m, 4m, 5m, 6m, 10m, 12m, 15m, 20m, 30m) or hours dividing a day (1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h)."
  }
}

variable "max_instance_num" {
  description = "At most this many function instances at once (MAX_INSTANCE_NUM too). 1 with the SQLite ledger: the timer and HTTP requests then never run concurrently (one arriving while another runs is throttled). Raise it only with ledger = \"redis\"."
  type        = number
  default     = 1

  validation {
    condition     = var.max_instance_num >= 1 && var.max_instance_num <= 1000 && floor(var.max_instance_num) == var.max_instance_num
    error_message = "A whole number from 1 to 1000."
  }
}

variable "ledger" {
  description = "sqlite (default): the ledger in the instance's /tmp, with max_instance_num = 1. redis: a DCS Redis instance in vpc_id/subnet_id shared by all instances (created here unless redis_url is given)."
  type        = string
  default     = "sqlite"

  validation {
    condition     = contains(["sqlite", "redis"], var.ledger)
    error_message = "ledger is sqlite or redis."
  }
}

variable "vpc_id" {
  description = "ledger = redis: the VPC of the ledger instance; the function gets VPC access to it."
  type        = string
  default     = ""
}

variable "subnet_id" {
  description = "ledger = redis: the subnet's ID in that VPC (huaweicloud_vpc_subnet.id, the console's Network ID)."
  type        = string
  default     = ""
}

variable "redis_password" {
  description = "ledger = redis: password of the created instance (8-32 characters, three of: lower, upper, digit, special). It reaches the function only inside LEDGER_URL, in encrypted user data. Set it through TF_VAR_redis_password."
  type        = string
  default     = ""
  sensitive   = true
}

variable "redis_url" {
  description = "ledger = redis with an existing instance in vpc_id: its rediss://:password@host:port/0?... URL (nothing is created). Encrypted user data."
  type        = string
  default     = ""
  sensitive   = true
}

variable "redis_capacity" {
  description = "ledger = redis: memory of the created instance in GB; the ledger needs little."
  type        = number
  default     = 0.125
}

variable "redis_cache_mode" {
  description = "ledger = redis: ha (master/standby, default) or single (a single node loses its data on restart)."
  type        = string
  default     = "ha"

  validation {
    condition     = contains(["ha", "single"], var.redis_cache_mode)
    error_message = "ha or single."
  }
}

variable "redis_availability_zones" {
  description = "ledger = redis: availability zones of the created instance (primary, standby); empty: the flavor's first ones."
  type        = list(string)
  default     = []
}

variable "redis_ca_file" {
  description = "ledger = redis: path, in the function's code, of the DCS CA certificate (ca.crt from the instance's SSL page), e.g. /opt/function/code/dcs-ca.crt: the server is then verified. Empty: TLS without server verification."
  type        = string
  default     = ""
}

variable "dcs_regions" {
  description = "Regions (IAM project names) whose DCS instances schedules may act on besides the function's own; the agency's role is granted in each. Schedules there must set project_id."
  type        = list(string)
  default     = []
}

variable "ces_namespace" {
  description = "CES_NAMESPACE: Cloud Eye namespace (service.item, e.g. DCSM.maintenance) of the function's metrics and of the failure alarm; empty: metrics off."
  type        = string
  default     = ""

  # The rule dcs_maintenance/settings.py applies (tests/test_deploy_files.py evaluates both on a table of names):
  # service.item, each part a letter then letters, digits or _, 3-32 characters (huaweicloudsdkces's
  # MetricInfo.namespace); a service starting with SYS, AGT or SRE (any case: SYSTEM.x too), and SERVICE.BMS, are
  # Cloud Eye's own. Surrounding spaces are refused: the value is also the alarm's namespace, which is not trimmed.
  validation {
    condition     = var.ces_namespace == "" || (can(regex("^[A-Za-z][A-Za-z0-9_]*[.][A-Za-z][A-Za-z0-9_]*$", var.ces_namespace)) && length(var.ces_namespace) >= 3 && length(var.ces_namespace) <= 32 && !can(regex("^(SYS|AGT|SRE)", upper(var.ces_namespace))) && upper(var.ces_namespace) != "SERVICE.BMS")
    error_message = "A custom namespace is service.item (3-32 letters, digits, _; each part starting with a letter); services starting with SYS, AGT or SRE, and SERVICE.BMS, are Cloud Eye's own."
  }
}

variable "history_retention" {
  description = "HISTORY_RETENTION: how long the ledger keeps history entries (GET /history, `history`): a whole number and s, m, h or d, from 1h to 400d."
  type        = string
  default     = "30d"

  # The rule dcs_maintenance/settings.py applies (durations.parse_duration, then HISTORY_RETENTION_RANGE; empty:
  # its default 30d); tests/test_deploy_files.py evaluates both on a table of values. Surrounding spaces are
  # refused here (settings would strip them). try(): Terraform evaluates both sides of && even when one is false.
  validation {
    condition = var.history_retention == "" || try(
      tonumber(regex("^([0-9]{1,12})[smhd]$", var.history_retention)[0]) * [1, 60, 3600, 86400][index(["s", "m", "h", "d"], substr(var.history_retention, -1, 1))] >= 3600 &&
      tonumber(regex("^([0-9]{1,12})[smhd]$", var.history_retention)[0]) * [1, 60, 3600, 86400][index(["s", "m", "h", "d"], substr(var.history_retention, -1, 1))] <= 34560000,
    false)
    error_message = "history_retention is a whole number and a unit s, m, h or d (e.g. 30d, 72h), from 1h to 400d."
  }
}

variable "batch_size" {
  description = "BATCH_SIZE: instances per status call (1-50: DCS refuses a call naming more, DCS.4100)."
  type        = number
  default     = 50
  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 50 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number from 1 to 50 (DCS takes at most 50 instances in one call)."
  }
}

variable "protect_tag" {
  description = "PROTECT_TAG: instances with this key=value tag are never touched."
  type        = string
  default     = "maintenance-protect=true"
}

variable "dry_run" {
  description = "DRY_RUN: decide and report only."
  type        = bool
  default     = false
}

variable "log_level" {
  description = "LOG_LEVEL: DEBUG, INFO, WARNING or ERROR."
  type        = string
  default     = "INFO"
}

variable "notify_topic_urn" {
  description = "NOTIFY_SMN_TOPIC_URN: SMN topic told about ticks with failures, unknown outcomes or invalid schedules (empty: none)."
  type        = string
  default     = ""
}

variable "api_token" {
  description = "API_TOKEN for the HTTP routes (Authorization: Bearer ...); stored as encrypted user data. Empty: routes other than /health refuse every request."
  type        = string
  default     = ""
  sensitive   = true
}

variable "calendar_token" {
  description = "CALENDAR_TOKEN: the read-only token calendar clients pass as ?token= on GET /calendar.ics (and nowhere else); stored as encrypted user data. Empty: the feed needs the bearer token. Set it through TF_VAR_calendar_token."
  type        = string
  default     = ""
  sensitive   = true

  # As dcs_maintenance/settings.py checks it (MIN_CALENDAR_TOKEN): at least 16 characters, no surrounding spaces.
  validation {
    condition     = var.calendar_token == "" || (length(var.calendar_token) >= 16 && trimspace(var.calendar_token) == var.calendar_token)
    error_message = "calendar_token is a secret in a URL: at least 16 characters without surrounding spaces (e.g. the output of `openssl rand -hex 32`), or empty."
  }
}

variable "apig_group_id" {
  description = "API Gateway group for the HTTP routes; empty: no APIG trigger."
  type        = string
  default     = ""
}

variable "apig_instance_id" {
  description = "Dedicated API Gateway instance of that group; empty: the shared gateway (trigger type APIG)."
  type        = string
  default     = ""
}

variable "api_path" {
  description = "Base path of the routes (prefix match): /health, /schedules, /plan, ... are below it."
  type        = string
  default     = "/dcs-maintenance"
}
