variable "region" {
  description = "Region of the function and of the DCS instances it maintains (DCS_REGION)."
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
  description = "TICK_PERIOD and the TIMER trigger's rate: one value for both (a rate such as 5m, 1h)."
  type        = string
  default     = "5m"

  validation {
    condition     = can(regex("^[1-9][0-9]*[mhd]$", var.tick_period))
    error_message = "A FunctionGraph rate: minutes (1m-60m), hours (1h-24h) or days (1d-30d)."
  }
}

variable "ledger_url" {
  description = "LEDGER_URL: sqlite:////tmp/... for one instance at a time, or rediss://... of a DCS instance shared by all."
  type        = string
  default     = "sqlite:////tmp/dcs-maintenance.sqlite3"
}

variable "batch_size" {
  description = "BATCH_SIZE: instances per status call."
  type        = number
  default     = 50
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
