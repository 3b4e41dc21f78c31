using Forgetless.Data;
using Forgetless.Data.Sources;

namespace Forgetless.Tests.Data;

public sealed class CsvSourceTests
{
    [Fact]
    public void Quoted_fields_with_commas_quotes_and_newlines_are_parsed_and_lines_numbered_by_record_start()
    {
        using var f = new PrepareFixture();
        var path = f.Write("q.csv",
            "id,prompt,response\r\n" +
            "1,\"Hello, world\",\"He said \"\"hi\"\"\"\r\n" +
            "2,\"line one\nline two\",plain\n" +
            "\n" +
            "3,,\"\"\"quoted\"\" start\"\n");
        var mapping = new FieldMapping(new DataSourceOptions { Path = path, PromptField = "prompt", ResponseField = "response" });

        var records = CsvSource.Read(path, mapping, CancellationToken.None).ToList();

        records.Should().HaveCount(3);
        records[0].Should().Be(SourceRecord.Instruction(2, "Hello, world", "He said \"hi\""));
        records[1].Should().Be(SourceRecord.Instruction(3, "line one\nline two", "plain"));
        records[2].Line.Should().Be(6);
        records[2].Error.Should().Be("field 'prompt' is empty; expected non-empty text.");
    }

    [Fact]
    public void Text_after_a_closing_quote_is_a_bad_record()
    {
        using var f = new PrepareFixture();
        var path = f.Write("b.csv", "text\n\"abc\"def\nfine\n");
        var mapping = new FieldMapping(new DataSourceOptions { Path = path });

        var records = CsvSource.Read(path, mapping, CancellationToken.None).ToList();

        records[0].Line.Should().Be(2);
        records[0].Error.Should().StartWith("unexpected 'd' after a closing quote");
        records[1].Should().Be(SourceRecord.Plain(3, "fine"));
    }
}
