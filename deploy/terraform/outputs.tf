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
