using Forgetless.Stages;

return await ForgetlessApp.RunAsync(args);
