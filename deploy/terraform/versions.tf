# Terraform example: deploy dcs-maintenance to FunctionGraph with the huaweicloud provider.
#
#   .venv/bin/python -m dcs_maintenance package --python 3.10     # -> dist/dcs-maintenance.zip
#   cd deploy/terraform
#   cp terraform.tfvars.example terraform.tfvars                  # then edit it
#   export HW_ACCESS_KEY=... HW_SECRET_KEY=...                    # credentials of the deploying user
#   terraform init && terraform apply
#
# Re-run `package` and `terraform apply` to ship new code or schedules: the zip's hash changes the OBS object.
terraform {
  required_version = ">= 1.3"

  required_providers {
    huaweicloud = {
      source  = "huaweicloud/huaweicloud"
      version = ">= 1.60.0"
    }
  }
}

provider "huaweicloud" {
  region = var.region
}
