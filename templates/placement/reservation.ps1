{% autoescape off %}# GPU Placement Advisor: reservation #{{ ps.reservation_id }} for VM {{ ps.vm_comment }} on {{ ps.host_comment }} (vCenter {{ ps.vcenter_comment }})
# Review, then run in a PowerCLI session connected to that vCenter (Connect-VIServer {{ ps.server_comment }}{{ ps.port_comment }}). The VM must be powered off.
{{ ps.server_note }}$server = $global:DefaultVIServers | Where-Object { $_.Name -eq {{ ps.server }}{{ ps.port_match }} }
if (-not $server) { throw ('not connected to vCenter ' + {{ ps.server_label }} + ': run Connect-VIServer first') }
# -Name takes wildcards: the names are escaped so that exactly the named VM and host are changed
{{ ps.vm_note }}$vm = @(Get-VM -Name ([WildcardPattern]::Escape({{ ps.vm }})) -Server $server)
if ($vm.Count -ne 1) { throw ('expected one VM of that exact name, found ' + $vm.Count) }
$vm = $vm[0]
{{ ps.host_note }}$vmhost = @(Get-VMHost -Name ([WildcardPattern]::Escape({{ ps.host }})) -Server $server)
if ($vmhost.Count -ne 1) { throw ('expected one host of that exact name, found ' + $vmhost.Count) }
$vmhost = $vmhost[0]
{% if s.large_bar %}# Large-BAR GPUs ({{ ps.gpu_memory_gb }} GiB passed through) power on only under EFI firmware. Switching the
# firmware of an installed guest makes it unbootable, so this script stops instead of changing it.
if ($vm.ExtensionData.Config.Firmware -ne 'efi') { throw ('VM ' + $vm.Name + ' boots with ' + $vm.ExtensionData.Config.Firmware + ' firmware: GPUs with large BARs need EFI (set Boot Options > Firmware to EFI before installing the guest)') }
{% endif %}if ($vm.VMHost.Id -ne $vmhost.Id) { Move-VM -VM $vm -Destination $vmhost | Out-Null }  # place it on the planned host

# Full memory reservation (GPU VMs need all guest memory reserved){% if s.vm_settings.memory_reservation_gb %}; planned size {{ ps.memory_reservation_gb }} GB{% endif %}
$vm | Get-VMResourceConfiguration | Set-VMResourceConfiguration -MemReservationGB $vm.MemoryGB | Out-Null
{% if s.large_bar %}
# 64-bit MMIO for the GPUs' BARs: their memory rounded up to a power of two, doubled
New-AdvancedSetting -Entity $vm -Name 'pciPassthru.use64bitMMIO' -Value 'TRUE' -Force -Confirm:$false | Out-Null
New-AdvancedSetting -Entity $vm -Name 'pciPassthru.64bitMMIOSizeGB' -Value {{ ps.mmio_size_gb }} -Force -Confirm:$false | Out-Null
{% endif %}{% if numa_affinity %}
# vCPUs and memory on the GPUs' NUMA node
New-AdvancedSetting -Entity $vm -Name 'numa.nodeAffinity' -Value {{ ps.numa_affinity }} -Force -Confirm:$false | Out-Null
{% elif ps.numa_comment %}
# {{ ps.numa_comment }}
{% endif %}{% if s.consumption == "passthrough" %}
# DirectPath I/O: the planned GPUs by PCI address
{{ ps.pci_ids_note }}$wanted = @({{ ps.pci_ids }})
$devices = Get-PassthroughDevice -VMHost $vmhost -Type Pci | Where-Object { $wanted -contains $_.ExtensionData.PciDevice.Id }
if (@($devices).Count -ne $wanted.Count) { throw "expected $($wanted.Count) passthrough devices on $($vmhost.Name), found $(@($devices).Count)" }
foreach ($device in $devices) { Add-PassthroughDevice -VM $vm -PassthroughDevice $device | Out-Null }
{% elif s.consumption == "dynamic-passthrough" %}
# Dynamic DirectPath I/O: vSphere assigns a matching device at power-on (planned: {{ ps.pci_list }})
$spec = New-Object VMware.Vim.VirtualMachineConfigSpec
{% for d in ps.devices %}$change = New-Object VMware.Vim.VirtualDeviceConfigSpec
$change.Operation = [VMware.Vim.VirtualDeviceConfigSpecOperation]::add
$change.Device = New-Object VMware.Vim.VirtualPCIPassthrough
$change.Device.Key = -{{ forloop.counter|add:100 }}
$change.Device.Backing = New-Object VMware.Vim.VirtualPCIPassthroughDynamicBackingInfo
$allowed = New-Object VMware.Vim.VirtualPCIPassthroughAllowedDevice
$allowed.VendorId = {{ d.vendor_id }}
$allowed.DeviceId = {{ d.device_id }}
$change.Device.Backing.AllowedDevice = @($allowed)
{{ d.hardware_label_note }}$change.Device.Backing.CustomLabel = {{ d.hardware_label_ps }}
$spec.DeviceChange += $change
{% endfor %}(Get-View -VIObject $vm).ReconfigVM($spec)
{% elif s.consumption == "device-group" and s.device_group %}
# Device group {{ ps.device_group_comment }}: {{ ps.device_count }} x {{ ps.profile_comment }} placed by vSphere as one unit
# (planned on {{ ps.pci_list }}). Add it in the vSphere Client: Edit Settings > Add New Device > PCI Device >
# the device group {{ ps.device_group_comment }}. The vSphere API adds it as a device group of the VM
# (vim.vm.VirtualDeviceGroups, API 8.0.0.1 and later); this script does not build that specification.
# Do NOT add {{ ps.device_count }} separate vGPUs instead: vGPUs added one by one are not equivalent, they get no NVLink P2P{% if s.domain.kind == "nvswitch-partition" %}
# and no Fabric Manager partition{% endif %}.
{{ ps.device_group_note }}Write-Warning ('add the device group ' + {{ ps.device_group }} + ' to VM ' + $vm.Name + ' in the vSphere Client (Add New Device > PCI Device): this script does not add it')
{% else %}
# vGPU: one VirtualPCIPassthrough per device with the profile as its VMIOP backing{% if s.consumption == "vgpu" and s.devices|length > 1 %}
# The host assigns each vGPU by its assignment policy, one at a time: these vGPUs get no NVLink P2P{% if s.nvlink_group %};
# for NVLink, reserve with consumption device-group instead (vendor device group {{ ps.nvlink_group_comment }}){% endif %}.{% endif %}
$spec = New-Object VMware.Vim.VirtualMachineConfigSpec
{% for d in ps.devices %}$change = New-Object VMware.Vim.VirtualDeviceConfigSpec
$change.Operation = [VMware.Vim.VirtualDeviceConfigSpecOperation]::add
$change.Device = New-Object VMware.Vim.VirtualPCIPassthrough
$change.Device.Key = -{{ forloop.counter|add:100 }}
$change.Device.Backing = New-Object VMware.Vim.VirtualPCIPassthroughVmiopBackingInfo
{{ d.profile_note }}$change.Device.Backing.Vgpu = {{ d.profile_ps }}  # planned on {{ d.pci_comment }}{% if d.mig_slot %}, MIG slot {{ d.mig_slot }}{% endif %}{% if d.placement %}, {{ d.placement }}{% endif %}
$spec.DeviceChange += $change
{% endfor %}(Get-View -VIObject $vm).ReconfigVM($spec)
{% endif %}{% endautoescape %}
