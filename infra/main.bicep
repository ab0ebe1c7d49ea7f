// Footprint in Azure: export storage (ADLS Gen2), a Flex Consumption Function App, and the
// Event Grid subscription that sends BlobCreated events to the per-file function.
//
// Deploy in two steps, because Event Grid checks that the function exists:
//   az deployment group create -g RG -f infra/main.bicep -p name=footprint
//   func azure functionapp publish <functionAppName printed above>
//   az deployment group create -g RG -f infra/main.bicep -p name=footprint subscribeEvents=true

@description('Prefix of every resource name (letters and digits, 3-11 characters).')
@minLength(3)
@maxLength(11)
param name string

param location string = resourceGroup().location

@description('Container the analytics tool exports into.')
param exportContainer string = 'exports'

@description('Create the Event Grid subscription (after the app code is published).')
param subscribeEvents bool = false

var suffix = uniqueString(resourceGroup().id, name)
var storageName = toLower('${name}${take(suffix, 13)}')
var deploymentContainer = 'app-package'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    isHnsEnabled: true // hierarchical namespace: exports land with FlushWithClose
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource exports 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: exportContainer
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'eventgrid-deadletter'
}

resource packages 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${name}-plan'
  location: location
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

var connection = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: '${name}-${take(suffix, 6)}'
  location: location
  kind: 'functionapp,linux'
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'StorageAccountConnectionString', storageAccountConnectionStringName: 'AzureWebJobsStorage' }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      appSettings: [
        { name: 'AzureWebJobsStorage', value: connection }
        { name: 'FOOTPRINT_STORE', value: 'azure-tables:' }
        { name: 'FOOTPRINT_CONTAINER', value: exportContainer }
        { name: 'FOOTPRINT_PREFIX', value: '' }
        { name: 'FOOTPRINT_TABLE_PREFIX', value: 'footprint' }
        { name: 'FOOTPRINT_MAX_ATTEMPTS', value: '5' }
        { name: 'FOOTPRINT_RECONCILE_SCHEDULE', value: '0 */5 * * * *' }
        { name: 'FOOTPRINT_RECONCILE_BUDGET_SECONDS', value: '240' }
        { name: 'FOOTPRINT_EXPORT_SCHEDULE', value: '0 0 3 * * *' }
        { name: 'FOOTPRINT_EXPORT_TARGET', value: '' }
        { name: 'FOOTPRINT_SEGMENT_QUEUE', value: '' }
      ]
    }
  }
}

resource events 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: '${name}-exports'
  location: location
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = if (subscribeEvents) {
  parent: events
  name: 'blob-created-to-footprint'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${app.id}/functions/on_blob_created'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: [ 'Microsoft.Storage.BlobCreated' ]
      subjectBeginsWith: '/blobServices/default/containers/${exportContainer}/blobs/'
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.api'
          values: [ 'PutBlob', 'PutBlockList', 'CopyBlob', 'FlushWithClose' ]
        }
      ]
    }
    retryPolicy: { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 }
    deadLetterDestination: {
      endpointType: 'StorageBlob'
      properties: { resourceId: storage.id, blobContainerName: deadLetters.name }
    }
  }
}

output functionAppName string = app.name
output storageAccountName string = storage.name
