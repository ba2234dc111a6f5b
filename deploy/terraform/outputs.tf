output "function_urn" {
  description = "URN of the function."
  value       = huaweicloud_fgs_function.dcs_maintenance.urn
}

output "function_name" {
  value = huaweicloud_fgs_function.dcs_maintenance.name
}

output "agency_name" {
  description = "The agency whose temporary keys the function uses."
  value       = huaweicloud_identity_agency.dcs_maintenance.name
}

output "timer_trigger_id" {
  value = huaweicloud_fgs_function_trigger.timer.id
}

output "api_base_path" {
  description = "Base path of the HTTP routes on the API group's domain (empty without an APIG trigger)."
  value       = var.apig_group_id == "" ? "" : var.api_path
}

output "code_object" {
  description = "OBS object holding the deployed zip."
  value       = "obs://${var.code_bucket}/${huaweicloud_obs_bucket_object.code.key}"
}

output "timer_schedule" {
  description = "The TIMER trigger's Cron expression (FunctionGraph format, region time zone), from tick_period."
  value       = local.timer_event.schedule
}

output "max_instance_num" {
  description = "The function's instance cap (and its MAX_INSTANCE_NUM)."
  value       = var.max_instance_num
}

output "ledger" {
  description = "sqlite (in the single instance's /tmp) or the DCS instance holding the shared ledger."
  value       = local.redis_ledger ? (local.create_redis ? "redis: DCS instance ${huaweicloud_dcs_instance.ledger[0].id}" : "redis: redis_url") : "sqlite (one instance)"
}
