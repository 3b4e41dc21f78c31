Console.WriteLine("forgetless");
